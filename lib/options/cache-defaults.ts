import { DISCOVERY_DEFAULTS } from '../discovery/discovery-options.js';
import type { K8sCacheOptions } from './k8s-options.interface.js';

/**
 * Defaults of the numeric cache options, each written down once: discovery's four (`port` to
 * `lookupTimeout`) in `DISCOVERY_DEFAULTS`, which discovery applies on its own, the rest here.
 */
export const CACHE_DEFAULTS = {
  ...DISCOVERY_DEFAULTS,
  ttl: 0,
  connectTimeout: 1_000,
  commandTimeout: 1_000,
  maxConnections: 1,
  failureLimit: 2,
  retryTimeout: 30_000,
  maxValueSize: 1_048_000,
  generationCacheTime: 1_000,
  replicas: 1,
  trackedKeys: 100_000,
  refreshThreshold: 0,
} as const satisfies Partial<K8sCacheOptions>;

/** `warmupPeriod` when `refreshInterval` is 0 (no periodic refresh to scale it by), in ms. */
export const DEFAULT_WARMUP_PERIOD = 60_000;
