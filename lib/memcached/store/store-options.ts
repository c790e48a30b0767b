import type { LoggerService } from '@nestjs/common';
import { resolveCacheOptions } from '../../options/cache-options.js';
import type { ResolvedCacheOptions } from '../../options/cache-options.js';
import type {
  DiscoveryStats,
  LookupResult,
  Member,
  MemberDiff,
  MemberSource,
} from '../../discovery/member.js';
import { K8sOptionsError } from '../../errors/k8s.error.js';
import type { MemcachedError, MemcachedMemberError } from '../../errors/memcached.errors.js';
import type { K8sCacheOptions } from '../../options/k8s-options.interface.js';
import type { CommandObserver } from '../pool/command-observer.js';
import type { PoolStats } from '../pool/memcached-pool.js';

/** Options of `MemcachedStore`: the cache options of `K8sModule`, plus injection points. */
export interface MemcachedStoreOptions extends K8sCacheOptions {
  /**
   * Where the members come from, instead of resolving `host` (tests, a fixed list). The store
   * subscribes to it but does not stop it on `disconnect()`: the caller owns it.
   * @default a `MemberDiscovery` of `host`
   */
  source?: MemberSource;
  /** Where log lines go. @default Nest's Logger, context 'K8sCache' */
  logger?: LoggerService;
  /** Sees every command sent to a member, instead of the `telemetry` one. @default from `telemetry` */
  commandObserver?: CommandObserver;
}

/**
 * The events of `MemcachedStore` and their arguments (`store.on('eject', (member, error) => …)`).
 * Listeners run synchronously in the store's code paths: keep them quick, and never throw.
 */
export interface MemcachedStoreEvents {
  /** The member list changed: every member now (ejected ones included), and what changed. */
  members: [members: readonly Member[], diff: MemberDiff];
  /** A member left the ring after `failureLimit` consecutive failures that break it. */
  eject: [member: string, error: MemcachedMemberError];
  /**
   * An ejected member answered its probe and is back on the ring; `keptData`: it did not restart
   * meanwhile, so a new generation was started (its entries may be stale).
   */
  readmit: [member: string, keptData: boolean];
  /** A cache operation failed (it read as a miss or resolved `false`); Keyv forwards these. */
  error: [error: MemcachedError];
  /** A DNS lookup of the members ended (only with DNS discovery), changed or not. */
  refresh: [result: LookupResult];
  /**
   * The namespace generation in use changed: a `clear()` here or in another process (seen when
   * the generation was next confirmed), or a member that came back holding stale entries.
   */
  generation: [];
}

/** What `MemcachedStore.stats()` reports. */
export interface MemcachedStoreStats extends PoolStats {
  /** Health of the member source; undefined for sources that keep none (a fixed list). */
  readonly discovery: DiscoveryStats | undefined;
}

/** The cache options resolved and checked once, for a store of its own or of `K8sModule`. */
export function resolveStoreOptions(options: MemcachedStoreOptions): ResolvedCacheOptions {
  if (options === null || typeof options !== 'object') {
    throw new K8sOptionsError('MemcachedStore needs options: { host } or { source }.');
  }
  const resolved = resolveCacheOptions(options);
  if (options.source === undefined && resolved.host === undefined) {
    throw new K8sOptionsError(
      'MemcachedStore needs a host (a DNS name, name:port, SRV name or comma list) or a member source.',
    );
  }
  return resolved;
}
