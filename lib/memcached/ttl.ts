/** Largest exptime memcached reads as relative seconds; larger values are absolute Unix times. */
export const MAX_RELATIVE_EXPTIME = 2_592_000;

/**
 * Memcached `exptime` for a time to live in ms (Keyv and cache-manager use ms).
 *
 * - `undefined`, 0, NaN or Infinity: 0 (no expiry).
 * - Negative: -1 (memcached drops the item at once).
 * - Otherwise rounded up to whole seconds, so 1 ms lives 1 s and never turns into "no expiry".
 * - More than 30 days: sent as an absolute Unix time, as memcached requires.
 */
export function toExptime(ttlMs: number | undefined, nowMs: number = Date.now()): number {
  if (ttlMs === undefined || ttlMs === 0 || !Number.isFinite(ttlMs)) return 0;
  if (ttlMs < 0) return -1;
  const seconds = Math.ceil(ttlMs / 1000);
  return seconds > MAX_RELATIVE_EXPTIME ? Math.ceil((nowMs + ttlMs) / 1000) : seconds;
}
