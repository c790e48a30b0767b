// `nestjs-k8s/prometheus`: the cache's counters and the migration checks as Prometheus metrics. A
// subpath of its own because prom-client is an optional peer: apps without it import `nestjs-k8s`
// and never load it.
export { registerCacheMetrics } from './cache-metrics.js';
export type { CacheMetricsOptions, CacheMetricsSource } from './cache-metrics.js';
export { registerMigrationsMetrics } from './migrations-metrics.js';
export type { MigrationsMetricsOptions, MigrationsMetricsSource } from './migrations-metrics.js';
export { PromClientMissingError } from './prom-client-loader.js';
