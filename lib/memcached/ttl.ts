/** Largest exptime memcached reads as relative seconds; larger values are absolute Unix times. */
export const MAX_RELATIVE_EXPTIME = 2_592_000;

/** Largest exptime memcached parses (a signed 32-bit integer: 2038-01-19T03:14:07Z). */
export const MAX_EXPTIME = 2_147_483_647;

/**
 * Memcached `exptime` for a time to live in ms (Keyv and cache-manager use ms).
 *
 * - `undefined`, 0, NaN or Infinity: 0 (no expiry).
 * - Negative: -1 (memcached drops the item at once).
 * - Otherwise rounded up to whole seconds plus one: memcached's clock ticks once a second, not
 *   in step with the write, so `exptime` n keeps an item between n-1 and n seconds. The extra
 *   second keeps it at least as long as asked (1 ms never turns into "no expiry"); Keyv stores
 *   its own exact `expires` with the value and drops the entry on time when read.
 * - More than 30 days: sent as an absolute Unix time, as memcached requires.
 * - Ending after {@link MAX_EXPTIME}: 0 (no expiry). Memcached rejects a larger exptime, failing
 *   the set; clamping to `MAX_EXPTIME` instead would stop working in 2038 (every long TTL would
 *   then be in the past and expire at once). Keyv stores its own `expires` with the value and
 *   drops it when read after that, so the entry still ends on time; memcached's LRU frees it.
 */
export function toExptime(ttlMs: number | undefined, nowMs: number = Date.now()): number {
  if (ttlMs === undefined || ttlMs === 0 || !Number.isFinite(ttlMs)) return 0;
  if (ttlMs < 0) return -1;
  const seconds = Math.ceil(ttlMs / 1000) + 1;
  if (seconds <= MAX_RELATIVE_EXPTIME) return seconds;
  const absolute = Math.ceil((nowMs + ttlMs) / 1000) + 1;
  return absolute > MAX_EXPTIME ? 0 : absolute;
}
