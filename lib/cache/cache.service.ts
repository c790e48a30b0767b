import { CACHE_MANAGER } from '@nestjs/cache-manager';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { OnApplicationShutdown } from '@nestjs/common';
import type { Cache } from 'cache-manager';
import { K8S_MEMCACHED_STORE } from './cache.constants.js';
import type { MemcachedStore, MemcachedStoreStats } from '../memcached/store/memcached.store.js';

/** One entry of `CacheService.mset`. */
export interface CacheEntry<T> {
  key: string;
  value: T;
  /** Time to live in ms; falls back to the module's `cache.ttl`. */
  ttl?: number;
}

/**
 * The application's cache: the same cache-manager instance that backs `CACHE_MANAGER` and
 * `CacheInterceptor`, plus what only a discovering pool can answer (`servers`, `refresh`,
 * `stats`). A cache failure never rejects: a dead member reads as a miss and a failed write is
 * dropped (and counted in `stats()`).
 */
@Injectable()
export class CacheService implements OnApplicationShutdown {
  private readonly logger = new Logger('K8sCache');

  constructor(
    @Inject(CACHE_MANAGER) private readonly cache: Cache,
    @Inject(K8S_MEMCACHED_STORE) private readonly store: MemcachedStore | null,
  ) {}

  /** The value stored under `key`, or `undefined` on a miss (also when the cache is unreachable). */
  get<T>(key: string): Promise<T | undefined> {
    return this.cache.get<T>(key);
  }

  /** Stores `value` under `key` for `ttl` ms (default: the module's `cache.ttl`). */
  set<T>(key: string, value: T, ttl?: number): Promise<T> {
    return this.cache.set(key, value, ttl);
  }

  /** Removes `key` (from every copy); resolves `true` when it was removed. */
  del(key: string): Promise<boolean> {
    return this.cache.del(key);
  }

  /** Values in the order of `keys`; misses are `undefined`. One round trip per member per 100 keys. */
  mget<T>(keys: string[]): Promise<Array<T | undefined>> {
    return this.cache.mget<T>(keys);
  }

  /** Stores every entry, each with its own `ttl` in ms (default: the module's `cache.ttl`). */
  async mset<T>(entries: Array<CacheEntry<T>>): Promise<void> {
    await this.cache.mset(entries);
  }

  /**
   * Returns the cached value of `key`, or runs `fn` (once for concurrent callers), caches its
   * result for `ttl` ms and returns it. An error of `fn` rejects; a result that cannot be cached
   * (not serializable) is still returned.
   */
  async wrap<T>(key: string, fn: () => T | Promise<T>, ttl?: number): Promise<T> {
    let produced: { value: T } | undefined;
    try {
      return await this.cache.wrap(
        key,
        async () => {
          const value = await fn();
          produced = { value };
          return value;
        },
        ttl,
      );
    } catch (error) {
      if (produced === undefined) throw error;
      this.logger.warn(`wrap("${key}"): result not cached: ${(error as Error).message}`);
      return produced.value;
    }
  }

  /**
   * Empties this app's `cache.namespace` in every tier of this instance. In memcached it starts a
   * new generation (never `flush_all`: other namespaces on the same members keep their keys);
   * other pods, busy or idle, stop reading the old entries within `generationCacheTime` (plus one
   * round trip) after it resolved, their local tier included (see docs/cache.md, Clearing).
   */
  async clear(): Promise<void> {
    await this.cache.clear();
  }

  /** Current memcached members as `host:port`, sorted; empty for the in-memory store. */
  servers(): string[] {
    return this.store?.servers() ?? [];
  }

  /** Resolves the cache host again now: resolves once a lookup that began after this call has ended (concurrent calls share one). */
  async refresh(): Promise<void> {
    await this.store?.refresh();
  }

  /** Counters for health checks and dashboards: per member and in total. */
  stats(): CacheStats {
    return this.store
      ? { backend: 'memcached', servers: this.store.servers(), pool: this.store.stats() }
      : { backend: 'memory', servers: [] };
  }

  /** After every module's destroy hooks, so their last cache writes still go out. */
  async onApplicationShutdown(): Promise<void> {
    await this.cache.disconnect();
  }
}

/** What `CacheService.stats()` reports. */
export interface CacheStats {
  backend: 'memcached' | 'memory';
  servers: string[];
  /** Per-member counters, the ring, and discovery health (memcached only). */
  pool?: MemcachedStoreStats;
}
