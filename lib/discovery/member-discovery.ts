import { Logger } from '@nestjs/common';
import type { LoggerService } from '@nestjs/common';
import { CACHE_DEFAULTS } from '../cache/cache-defaults.js';
import { DnsTargets } from './dns-targets.js';
import type { TargetAnswer } from './dns-targets.js';
import { parseHostSpec } from './host-spec.js';
import { LOG_CONTEXT, PolledMemberSource } from './polled-member-source.js';
import type { PollOutcome } from './polled-member-source.js';
import { createResolver } from './resolvers.js';
import type { Resolver } from './resolvers.js';
import { SingleAddressWatch } from './single-address-warning.js';

/**
 * Options of `MemberDiscovery` (the discovery part of `K8sCacheOptions`). The numbers are taken
 * as they are: `resolveCacheOptions` validates them, once, before any source is built.
 */
export interface MemberDiscoveryOptions {
  /** What to resolve: a name, `name:port`, an IP, an SRV name or a comma list (see `K8sCacheOptions.host`). */
  host: string;
  /** Port for names that carry none. @default 11211 */
  port?: number;
  /** DNS servers to query directly instead of the system resolver. @default undefined (system resolver) */
  dnsServers?: string[];
  /** Periodic re-resolution, in ms; 0 turns it off. @default 30000 */
  refreshInterval?: number;
  /** Least time between two failure-triggered lookups, in ms. @default 1000 */
  minRefreshInterval?: number;
  /** Give up on one lookup after this many ms (the member list stays). @default 2000 */
  lookupTimeout?: number;
  /** Resolver to use instead of the one `dnsServers` selects (tests, custom DNS). @default undefined */
  resolver?: Resolver;
  /** Environment the ClusterIP warning reads `KUBERNETES_SERVICE_HOST` from. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Where log lines go. @default Nest's Logger, context 'K8sDiscovery' */
  logger?: LoggerService;
}

/**
 * Resolves `host` through DNS into memcached members and keeps the list current: every item of
 * the host option is resolved on each lookup (`DnsTargets`), on the shared refresh schedule and
 * keep-last-good rules of `PolledMemberSource`. Warns once when a Kubernetes Service name keeps
 * resolving to a single address (a ClusterIP Service rather than a headless one).
 */
export class MemberDiscovery extends PolledMemberSource {
  private readonly dns: DnsTargets;
  private readonly singleAddress: SingleAddressWatch;

  constructor(options: MemberDiscoveryOptions) {
    const refreshInterval = options.refreshInterval ?? CACHE_DEFAULTS.refreshInterval;
    const lookupTimeout = options.lookupTimeout ?? CACHE_DEFAULTS.lookupTimeout;
    const dns = new DnsTargets(
      parseHostSpec(options.host, options.port ?? CACHE_DEFAULTS.port),
      options.resolver ?? createResolver(options.dnsServers, lookupTimeout),
      lookupTimeout,
    );
    super(
      {
        refreshInterval,
        minRefreshInterval: options.minRefreshInterval ?? CACHE_DEFAULTS.minRefreshInterval,
        // Calls pass LOG_CONTEXT, which a user's LoggerService needs too.
        logger: options.logger ?? new Logger(),
        pollName: 'DNS lookup',
        target: dns.describe(),
      },
      dns.initial(),
      dns.needsDns,
    );
    this.dns = dns;
    this.singleAddress = new SingleAddressWatch({ minSpanMs: refreshInterval, env: options.env });
  }

  protected poll(): Promise<PollOutcome> {
    return this.dns.resolve((answer) => this.watchSingleAddress(answer));
  }

  protected override cancelPoll(): void {
    this.dns.cancel();
  }

  private watchSingleAddress({ target, members }: TargetAnswer): void {
    if (target.kind !== 'name' || members === undefined) return;
    const warning = this.singleAddress.observe(
      target.name,
      members.map((m) => m.host),
      Date.now(),
    );
    if (warning !== undefined) this.logger.warn(warning, LOG_CONTEXT);
  }
}
