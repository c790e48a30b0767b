import { K8sOptionsError } from '../errors/k8s.error.js';
import { parseHostSpec } from '../discovery/host-spec.js';
import { DnsServersResolver } from '../discovery/resolvers.js';
import type { K8sCacheOptions } from '../interfaces/k8s-options.interface.js';
import { CACHE_DEFAULTS } from './cache-defaults.js';

/** Cache options with every default applied; `host` stays optional (unset: in-memory store). */
export type ResolvedCacheOptions = Required<
  Omit<K8sCacheOptions, 'host' | 'dnsServers' | 'namespace'>
> &
  Pick<K8sCacheOptions, 'host' | 'dnsServers' | 'namespace'>;

type NumericOption = keyof typeof CACHE_DEFAULTS;

/** Node turns a timer delay above this into 1 ms: no ms option may exceed it. */
const MAX_TIMER_MS = 2_147_483_647;

/** Least accepted value of each number option (all must be finite integers). */
const MINIMUM: Record<NumericOption, number> = {
  port: 1,
  refreshInterval: 0,
  minRefreshInterval: 0,
  lookupTimeout: 1,
  ttl: 0,
  connectTimeout: 1,
  commandTimeout: 1,
  maxConnections: 1,
  failureLimit: 1,
  retryTimeout: 0,
  maxValueSize: 1,
  generationCacheTime: 0,
};

/** Options that are not a time in ms have their own ceiling. */
const MAXIMUM: Partial<Record<NumericOption, number>> = {
  port: 65535,
  // A connect still pending at shutdown keeps the process alive this long.
  connectTimeout: 60_000,
  maxConnections: 1_000,
  failureLimit: 1_000_000,
  maxValueSize: 1_073_741_824,
};

/**
 * Checks cache options and applies defaults. Throws `K8sOptionsError` naming the option, the
 * value and what is expected, so a misconfigured Deployment fails at start-up, not at the first
 * request.
 */
export function resolveCacheOptions(options: K8sCacheOptions = {}): ResolvedCacheOptions {
  if (options === null || typeof options !== 'object') {
    throw new K8sOptionsError(`cache options must be an object, got ${typeof options}.`);
  }
  const resolved = { ...CACHE_DEFAULTS, noDelay: true } as ResolvedCacheOptions;
  if (options.noDelay !== undefined) {
    if (typeof options.noDelay !== 'boolean') {
      throw new K8sOptionsError(
        `cache.noDelay must be true or false, got ${JSON.stringify(options.noDelay)}.`,
      );
    }
    resolved.noDelay = options.noDelay;
  }
  for (const name of Object.keys(CACHE_DEFAULTS) as NumericOption[]) {
    const value = options[name];
    if (value === undefined) continue;
    const max = MAXIMUM[name] ?? MAX_TIMER_MS;
    if (
      typeof value !== 'number' ||
      !Number.isInteger(value) ||
      value < MINIMUM[name] ||
      value > max
    ) {
      throw new K8sOptionsError(
        `cache.${name} must be an integer from ${MINIMUM[name]} to ${max}, got ${JSON.stringify(value)}.`,
      );
    }
    resolved[name] = value;
  }
  if (options.host !== undefined && options.host !== null && options.host !== '') {
    if (typeof options.host !== 'string') {
      throw new K8sOptionsError(`cache.host must be a string, got ${typeof options.host}.`);
    }
    parseHostSpec(options.host, resolved.port); // throws with the bad part named
    resolved.host = options.host;
  }
  if (options.dnsServers !== undefined) {
    if (!Array.isArray(options.dnsServers) || options.dnsServers.length === 0) {
      throw new K8sOptionsError(
        `cache.dnsServers must be a non-empty array of 'ip' or 'ip:port' strings, got ${JSON.stringify(options.dnsServers)}.`,
      );
    }
    // The resolver refuses what it could not query, with a message that says what it takes.
    new DnsServersResolver(options.dnsServers, resolved.lookupTimeout);
    resolved.dnsServers = [...options.dnsServers];
  }
  if (options.namespace !== undefined) {
    if (typeof options.namespace !== 'string' || options.namespace === '') {
      throw new K8sOptionsError(
        `cache.namespace must be a non-empty string, got ${JSON.stringify(options.namespace)}.`,
      );
    }
    resolved.namespace = options.namespace;
  }
  return resolved;
}
