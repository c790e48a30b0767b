import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { ConnectionOptions } from 'node:tls';
import { K8sOptionsError } from '../errors/k8s.error.js';
import { DnsServersResolver } from '../discovery/resolvers.js';
import type { K8sCacheOptions } from './k8s-options.interface.js';
import { resolveTelemetryOptions } from '../telemetry/telemetry-options.js';
import { CACHE_DEFAULTS, DEFAULT_WARMUP_PERIOD } from './cache-defaults.js';
import { checkHost, resolveDiscovery, resolveEndpointMode } from './discovery-mode-options.js';
import { resolveLocalCacheOptions } from './local-cache-options.js';
import type { ResolvedLocalCacheOptions } from './local-cache-options.js';

/**
 * Cache options with every default applied; `host` stays optional (unset: in-memory store), `tls`
 * is the `tls.connect` options (undefined: plaintext), `local` the local tier (undefined: off).
 */
export type ResolvedCacheOptions = Required<
  Omit<K8sCacheOptions, 'host' | 'dnsServers' | 'namespace' | 'tls' | 'local' | 'telemetry'>
> &
  Pick<K8sCacheOptions, 'host' | 'dnsServers' | 'namespace' | 'telemetry'> & {
    tls?: ConnectionOptions;
    local?: ResolvedLocalCacheOptions;
  };

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
  replicas: 1,
  trackedKeys: 0,
  refreshThreshold: 0,
};

/** Options that are not a time in ms have their own ceiling. */
const MAXIMUM: Partial<Record<NumericOption, number>> = {
  port: 65535,
  // A connect still pending at shutdown keeps the process alive this long.
  connectTimeout: 60_000,
  maxConnections: 1_000,
  failureLimit: 1_000_000,
  maxValueSize: 1_073_741_824,
  replicas: 5,
  // About 100 bytes each on the heap.
  trackedKeys: 10_000_000,
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
  const resolved = {
    ...CACHE_DEFAULTS,
    noDelay: booleanOption(options, 'noDelay', true),
    collectTimings: booleanOption(options, 'collectTimings', false),
    nonBlocking: booleanOption(options, 'nonBlocking', false),
  } as ResolvedCacheOptions;
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
        `cache.${name} must be an integer from ${MINIMUM[name]} to ${max}, got ${shown(value)}.`,
      );
    }
    resolved[name] = value;
  }
  resolved.discovery = resolveDiscovery(options.discovery);
  resolved.warmupPeriod = resolveWarmupPeriod(options.warmupPeriod, resolved.refreshInterval);
  if (resolved.ttl > 0 && resolved.refreshThreshold >= resolved.ttl) {
    // Every wrap hit would refresh: the function would run on each call, as with no cache.
    throw new K8sOptionsError(
      `cache.refreshThreshold (${resolved.refreshThreshold} ms) must be less than cache.ttl ` +
        `(${resolved.ttl} ms): lower it, or set 0 to turn background refresh off.`,
    );
  }
  const local = resolveLocalCacheOptions(options.local);
  if (local !== undefined) resolved.local = local;
  if (options.host !== undefined && options.host !== null && options.host !== '') {
    if (typeof options.host !== 'string') {
      throw new K8sOptionsError(`cache.host must be a string, got ${typeof options.host}.`);
    }
    // Throws with the bad part named.
    checkHost(resolved.discovery, options.host, resolved.port);
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
  const tls =
    resolved.discovery === 'endpoint'
      ? resolveEndpointMode(options, resolved, resolveTls(options.tls))
      : resolveTls(options.tls);
  if (tls !== undefined) resolved.tls = tls;
  // Checked here, resolved where the store is built (whether the API is installed decides there).
  resolveTelemetryOptions(options.telemetry);
  if (options.telemetry !== undefined) resolved.telemetry = options.telemetry;
  return resolved;
}

/**
 * Two refresh intervals by default: a member DNS adds or drops is noticed within one, and the
 * keys it moved are mostly read again within the next.
 */
function resolveWarmupPeriod(value: unknown, refreshInterval: number): number {
  if (value === undefined) {
    return refreshInterval === 0
      ? DEFAULT_WARMUP_PERIOD
      : Math.min(2 * refreshInterval, MAX_TIMER_MS);
  }
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_TIMER_MS) {
    throw new K8sOptionsError(
      `cache.warmupPeriod must be an integer from 0 (warm-up off) to ${MAX_TIMER_MS} ms, got ${JSON.stringify(value)}.`,
    );
  }
  return value;
}

/** `tls.connect` options the pool connects with (memcache-client sets host and port per member). */
const TLS_FORBIDDEN = ['host', 'port', 'path', 'socket'] as const;

function resolveTls(tls: K8sCacheOptions['tls']): ConnectionOptions | undefined {
  if (tls === undefined || tls === false) return undefined;
  if (tls === true) return { rejectUnauthorized: true };
  if (tls === null || typeof tls !== 'object' || Array.isArray(tls)) {
    throw new K8sOptionsError(
      `cache.tls must be true, false or an object of tls.connect options, got ${JSON.stringify(tls)}.`,
    );
  }
  for (const name of TLS_FORBIDDEN) {
    if (tls[name] !== undefined) {
      throw new K8sOptionsError(
        `cache.tls.${name} cannot be set: each member's address comes from cache.host. Use ` +
          'cache.tls.servername for the name the certificates are checked against.',
      );
    }
  }
  if (
    tls.servername !== undefined &&
    (typeof tls.servername !== 'string' || tls.servername === '' || isIP(tls.servername) !== 0)
  ) {
    throw new K8sOptionsError(
      `cache.tls.servername must be a DNS name the member certificates hold (e.g. the Service ` +
        `name), got ${JSON.stringify(tls.servername)}; leave it unset to check the member's IP.`,
    );
  }
  if (tls.rejectUnauthorized !== undefined && typeof tls.rejectUnauthorized !== 'boolean') {
    throw new K8sOptionsError(
      `cache.tls.rejectUnauthorized must be true or false, got ${JSON.stringify(tls.rejectUnauthorized)}.`,
    );
  }
  // Node skips what is not PEM in `ca` without a word (a path given instead of the file's contents).
  const cas = tls.ca === undefined ? [] : Array.isArray(tls.ca) ? tls.ca : [tls.ca];
  if (cas.some((ca) => !String(ca).includes('-----BEGIN CERTIFICATE-----'))) {
    throw new K8sOptionsError(
      'cache.tls.ca must hold PEM certificates (the contents, e.g. readFileSync(path), not a ' +
        'path); a value without -----BEGIN CERTIFICATE----- was given.',
    );
  }
  try {
    // Bad PEM in ca/cert/key fails here, at start-up, rather than on every connection.
    createSecureContext(tls);
  } catch (error) {
    throw new K8sOptionsError(
      `cache.tls is not usable (${error instanceof Error ? error.message : String(error)}): ` +
        'ca, cert and key must be PEM contents (e.g. readFileSync(path)), and key must match cert.',
    );
  }
  // Explicit, so NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment does not turn checks off.
  return { ...tls, rejectUnauthorized: tls.rejectUnauthorized ?? true };
}

function booleanOption(
  options: K8sCacheOptions,
  name: 'noDelay' | 'collectTimings' | 'nonBlocking',
  fallback: boolean,
): boolean {
  const value = options[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw new K8sOptionsError(`cache.${name} must be true or false, got ${JSON.stringify(value)}.`);
  }
  return value;
}

/** A value as an error message shows it: JSON would print `Number('60s')` (NaN) as null. */
function shown(value: unknown): string {
  return typeof value === 'number' && !Number.isFinite(value)
    ? String(value)
    : JSON.stringify(value);
}
