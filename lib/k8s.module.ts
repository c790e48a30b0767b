import { CACHE_MANAGER } from '@nestjs/cache-manager';
import { Logger, Module } from '@nestjs/common';
import type { Provider } from '@nestjs/common';
import { createCache } from 'cache-manager';
import Keyv from 'keyv';
import { CacheService } from './cache/cache.service.js';
import { resolveCacheOptions } from './options/cache-options.js';
import type { ResolvedCacheOptions } from './options/cache-options.js';
import { keyvDeserialize, withStringEntryShortcut } from './cache/keyv-serializer.js';
import { LocalTierStore } from './cache/local-tier.store.js';
import { SettledWritesKeyv } from './cache/settled-writes.keyv.js';
import type { K8sModuleOptions } from './options/k8s-options.interface.js';
import {
  K8S_CACHE_KEYV,
  K8S_CACHE_OPTIONS,
  K8S_CACHE_STORES,
  K8S_MEMCACHED_STORE,
} from './cache/cache.constants.js';
import { ConfigurableModuleClass, K8S_MODULE_OPTIONS } from './k8s.module-definition.js';
import { MemcachedStore } from './memcached/store/memcached.store.js';

const logger = new Logger('K8sModule');

// Resolved once: a bad option fails start-up here, and every provider below reads the same values.
const optionsProvider: Provider = {
  provide: K8S_CACHE_OPTIONS,
  inject: [K8S_MODULE_OPTIONS],
  useFactory: ({ cache }: K8sModuleOptions): ResolvedCacheOptions => resolveCacheOptions(cache),
};

const storeProvider: Provider = {
  provide: K8S_MEMCACHED_STORE,
  inject: [K8S_CACHE_OPTIONS],
  useFactory: async (options: ResolvedCacheOptions): Promise<MemcachedStore | null> => {
    if (!options.host) {
      logger.log(
        'cache.host is not set: using an in-memory cache (set it to a memcached Service name in Kubernetes).',
      );
      return null;
    }
    // cache-manager applies the module's ttl to every write (and 0 means "never" there); the
    // store must not add a default of its own.
    const store = new MemcachedStore({ ...options, host: options.host, ttl: 0 });
    // Start with the members DNS knows now; a failed lookup leaves the pool empty (every read a
    // miss) and later refreshes fill it, so a missing memcached never blocks start-up.
    await store.ready();
    return store;
  },
};

const keyvProvider: Provider = {
  provide: K8S_CACHE_KEYV,
  inject: [K8S_CACHE_OPTIONS, K8S_MEMCACHED_STORE],
  useFactory: (options: ResolvedCacheOptions, store: MemcachedStore | null): Keyv =>
    newKeyv(store ?? new Map(), options),
};

const storesProvider: Provider = {
  provide: K8S_CACHE_STORES,
  inject: [K8S_CACHE_OPTIONS, K8S_CACHE_KEYV, K8S_MEMCACHED_STORE],
  useFactory: (options: ResolvedCacheOptions, keyv: Keyv, store: MemcachedStore | null): Keyv[] => {
    if (!options.local) return [keyv];
    const local = new LocalTierStore(
      options.local,
      store ? () => store.generationConfirmed() : undefined,
    );
    // Another pod's clear(): local copies of the old generation go as soon as it is seen.
    store?.on('generation', () => void local.clear());
    return [newKeyv(local, options), keyv];
  },
};

const cacheManagerProvider: Provider = {
  provide: CACHE_MANAGER,
  inject: [K8S_CACHE_OPTIONS, K8S_CACHE_STORES],
  useFactory: (options: ResolvedCacheOptions, stores: Keyv[]) =>
    createCache({
      stores,
      ttl: options.ttl || undefined,
      refreshThreshold: options.refreshThreshold || undefined,
      // A refresh of a value found in the local tier must reach memcached too, or other pods
      // never see it and memcached's copy expires.
      refreshAllStores: true,
      nonBlocking: options.nonBlocking,
    }),
};

/** A Keyv over `store`, serializing the same way in every tier (a local hit is a fresh copy). */
function newKeyv(store: Keyv['store'], options: ResolvedCacheOptions): Keyv {
  const keyv = new (options.nonBlocking ? SettledWritesKeyv : Keyv)({
    store,
    namespace: options.namespace ?? 'keyv',
    // Keyv's default format, read without a per-node JSON reviver.
    deserialize: keyvDeserialize,
  });
  // Keyv's default serializer (what it set above), with a shortcut of the same output for
  // string values.
  if (keyv.serialize) keyv.serialize = withStringEntryShortcut(keyv.serialize);
  // The store already logs and counts its failures; Keyv would only re-emit them.
  keyv.on('error', () => undefined);
  return keyv;
}

/**
 * Makes a Nest app a good Kubernetes citizen. `forRoot({ cache: { host } })` provides
 * `CACHE_MANAGER` (so `CacheInterceptor` works), `CacheService`, and a memcached pool whose
 * members are discovered from DNS; without `host` the same API runs on an in-memory store.
 */
@Module({
  providers: [
    optionsProvider,
    storeProvider,
    keyvProvider,
    storesProvider,
    cacheManagerProvider,
    CacheService,
  ],
  exports: [CACHE_MANAGER, CacheService, K8S_MEMCACHED_STORE],
})
export class K8sModule extends ConfigurableModuleClass {}
