import { Logger } from '@nestjs/common';
import type { LoggerService } from '@nestjs/common';
import { createResolver } from './resolvers.js';
import type { Resolver } from './resolvers.js';

/** Defaults of the numbers below, also the cache options' (`CACHE_DEFAULTS` spreads them). */
export const DISCOVERY_DEFAULTS = {
  port: 11211,
  refreshInterval: 30_000,
  minRefreshInterval: 1_000,
  lookupTimeout: 2_000,
} as const;

/**
 * Options every discovery source takes. The numbers are taken as they are: `resolveCacheOptions`
 * validates them, once, before any source is built.
 */
export interface DiscoverySourceOptions {
  /** What to resolve (each source says which forms it takes). */
  host: string;
  /** Port when `host` carries none. @default 11211 */
  port?: number;
  /** DNS servers to query directly instead of the system resolver. @default undefined (system resolver) */
  dnsServers?: string[];
  /** Periodic poll, in ms from the end of the previous one; 0 turns it off. @default 30000 */
  refreshInterval?: number;
  /** Least time between two failure-triggered polls, in ms. @default 1000 */
  minRefreshInterval?: number;
  /** Bound of one poll's DNS lookup (and of the source's own query, if any), in ms. @default 2000 */
  lookupTimeout?: number;
  /** Resolver to use instead of the one `dnsServers` selects (tests, custom DNS). @default undefined */
  resolver?: Resolver;
  /** Where log lines go. @default Nest's Logger, context 'K8sDiscovery' */
  logger?: LoggerService;
}

/** `DiscoverySourceOptions` with the defaults filled in. */
export interface ResolvedDiscoverySourceOptions {
  readonly port: number;
  readonly refreshInterval: number;
  readonly minRefreshInterval: number;
  readonly lookupTimeout: number;
  readonly resolver: Resolver;
  readonly logger: LoggerService;
}

export function resolveDiscoverySourceOptions(
  options: DiscoverySourceOptions,
): ResolvedDiscoverySourceOptions {
  const lookupTimeout = options.lookupTimeout ?? DISCOVERY_DEFAULTS.lookupTimeout;
  return {
    port: options.port ?? DISCOVERY_DEFAULTS.port,
    refreshInterval: options.refreshInterval ?? DISCOVERY_DEFAULTS.refreshInterval,
    minRefreshInterval: options.minRefreshInterval ?? DISCOVERY_DEFAULTS.minRefreshInterval,
    lookupTimeout,
    resolver: options.resolver ?? createResolver(options.dnsServers, lookupTimeout),
    // Calls pass LOG_CONTEXT, which a user's LoggerService needs too.
    logger: options.logger ?? new Logger(),
  };
}
