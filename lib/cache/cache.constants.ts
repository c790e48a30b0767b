/** The Keyv instance behind `CACHE_MANAGER` (memcached-backed, or in-memory without a host). */
export const K8S_CACHE_KEYV = Symbol('nestjs-k8s:CACHE_KEYV');

/** The `MemcachedStore`, or `null` when the cache runs in memory. */
export const K8S_MEMCACHED_STORE = Symbol('nestjs-k8s:MEMCACHED_STORE');

/** The cache options, resolved and validated once (internal). */
export const K8S_CACHE_OPTIONS = Symbol('nestjs-k8s:CACHE_OPTIONS');

/** The Keyv tiers behind `CACHE_MANAGER`, first tier first: `[local?, memcached or memory]` (internal). */
export const K8S_CACHE_STORES = Symbol('nestjs-k8s:CACHE_STORES');
