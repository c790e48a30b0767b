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

/** How a Keyv envelope (`{"value":…,"expires":<epoch ms>}`) starts once serialized. */
const ENVELOPE_START = '{"value":';

/**
 * Memcached `exptime` for a copy of `stored` (a value as the store wrote it) that must not outlive
 * the original, or undefined when that cannot be proven, so no copy is made. Memcached's text
 * protocol does not tell an item's remaining time to live, but Keyv's envelope carries `expires`:
 *
 * - `expires` a number: its remaining whole seconds (rounded down, so the copy never outlives
 *   the original, which was stored with its TTL rounded up plus one second); under one second
 *   left: undefined. Beyond 30 days, an absolute time, as `toExptime` sends it.
 * - No `expires` and `defaultTtlMs` 0: 0 (the original has no expiry either).
 * - Anything else (not an envelope; no `expires` while the store's default ttl applies): undefined.
 */
export function copyExptime(
  stored: unknown,
  defaultTtlMs: number,
  nowMs: number = Date.now(),
): number | undefined {
  if (typeof stored !== 'string' || !stored.startsWith(ENVELOPE_START)) return undefined;
  let envelope: unknown;
  try {
    envelope = JSON.parse(stored);
  } catch {
    return undefined;
  }
  if (envelope === null || typeof envelope !== 'object') return undefined;
  const expires = (envelope as { expires?: unknown }).expires;
  if (expires === undefined || expires === null) return defaultTtlMs === 0 ? 0 : undefined;
  if (typeof expires !== 'number' || !Number.isFinite(expires)) return undefined;
  const seconds = Math.floor((expires - nowMs) / 1000);
  if (seconds < 1) return undefined;
  if (seconds <= MAX_RELATIVE_EXPTIME) return seconds;
  const absolute = Math.floor(expires / 1000);
  // The original was sent without expiry then (see toExptime): neither does the copy outlive it.
  return absolute > MAX_EXPTIME ? 0 : absolute;
}
