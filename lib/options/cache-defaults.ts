import type { K8sCacheOptions } from './k8s-options.interface.js';

/** Defaults of the numeric cache options: the one place they are written down. */
export const CACHE_DEFAULTS = {
  port: 11211,
  refreshInterval: 30_000,
  minRefreshInterval: 1_000,
  lookupTimeout: 2_000,
  ttl: 0,
  connectTimeout: 1_000,
  commandTimeout: 1_000,
  maxConnections: 1,
  failureLimit: 2,
  retryTimeout: 30_000,
  maxValueSize: 1_048_000,
  generationCacheTime: 1_000,
  replicas: 1,
  refreshThreshold: 0,
} as const satisfies Partial<K8sCacheOptions>;

/** `warmupPeriod` when `refreshInterval` is 0 (no periodic refresh to scale it by), in ms. */
export const DEFAULT_WARMUP_PERIOD = 60_000;
