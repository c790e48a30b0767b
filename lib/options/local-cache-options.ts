import { K8sOptionsError } from '../errors/k8s.error.js';
import type { K8sLocalCacheOptions } from './k8s-options.interface.js';

/** `cache.local` with its defaults applied. */
export type ResolvedLocalCacheOptions = Required<K8sLocalCacheOptions>;

/** Defaults of `cache.local` when it is given (the tier itself is off by default). */
export const LOCAL_CACHE_DEFAULTS = { max: 1_000, ttl: 5_000 } as const;

/** Node turns a timer delay above this into 1 ms; no ms option may exceed it. */
const MAX_TTL_MS = 2_147_483_647;
/** Every entry is a serialized copy on the heap: a bound that still fits in a pod's memory. */
const MAX_ENTRIES = 10_000_000;

/**
 * Checks `cache.local` and applies its defaults; `undefined` when the tier is off (unset).
 * Throws `K8sOptionsError` naming the field, the value and what is expected.
 */
export function resolveLocalCacheOptions(
  local: K8sLocalCacheOptions | undefined,
): ResolvedLocalCacheOptions | undefined {
  if (local === undefined) return undefined;
  if (local === null || typeof local !== 'object' || Array.isArray(local)) {
    throw new K8sOptionsError(
      `cache.local must be an object { max, ttl } (or unset to turn the local tier off), got ${JSON.stringify(local)}.`,
    );
  }
  return {
    max: integer('max', local.max, LOCAL_CACHE_DEFAULTS.max, 1, MAX_ENTRIES),
    ttl: integer('ttl', local.ttl, LOCAL_CACHE_DEFAULTS.ttl, 1, MAX_TTL_MS),
  };
}

function integer(
  name: keyof K8sLocalCacheOptions,
  value: unknown,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new K8sOptionsError(
      `cache.local.${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}.`,
    );
  }
  return value;
}
