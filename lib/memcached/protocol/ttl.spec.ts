import { describe, expect, it } from 'vitest';
import { copyExptime, MAX_EXPTIME, MAX_RELATIVE_EXPTIME, toExptime } from './ttl.js';

describe('toExptime', () => {
  const now = 1_700_000_000_000;

  it('keeps "no TTL" as no expiry', () => {
    expect(toExptime(undefined, now)).toBe(0);
    expect(toExptime(0, now)).toBe(0);
    expect(toExptime(Number.POSITIVE_INFINITY, now)).toBe(0);
    expect(toExptime(Number.NaN, now)).toBe(0);
  });

  it("rounds up, plus the second that memcached's clock may already be into", () => {
    expect(toExptime(1, now)).toBe(2);
    expect(toExptime(300, now)).toBe(2);
    expect(toExptime(1000, now)).toBe(2);
    expect(toExptime(1001, now)).toBe(3);
    expect(toExptime(1500, now)).toBe(3);
  });

  it('sends a negative TTL as already expired', () => {
    expect(toExptime(-5, now)).toBe(-1);
  });

  it('sends more than 30 days as an absolute Unix time', () => {
    expect(toExptime((MAX_RELATIVE_EXPTIME - 1) * 1000, now)).toBe(MAX_RELATIVE_EXPTIME);
    expect(toExptime(MAX_RELATIVE_EXPTIME * 1000, now)).toBe(now / 1000 + MAX_RELATIVE_EXPTIME + 1);
    const fortyDays = 40 * 24 * 3600 * 1000;
    expect(toExptime(fortyDays, now)).toBe((now + fortyDays) / 1000 + 1);
  });

  it('sends a TTL ending past what memcached can represent as no expiry', () => {
    const limitMs = MAX_EXPTIME * 1000;
    // Ends (with the extra second) exactly at the last representable second: kept as is.
    expect(toExptime(limitMs - now - 1000, now)).toBe(MAX_EXPTIME);
    // One ms later, or a hundred years: memcached would reject the set (CLIENT_ERROR).
    expect(toExptime(limitMs - now - 999, now)).toBe(0);
    expect(toExptime(100 * 365 * 24 * 3600 * 1000, now)).toBe(0);
    expect(toExptime(Number.MAX_SAFE_INTEGER, now)).toBe(0);
    // Relative TTLs do not depend on the clock, even past 2038.
    expect(toExptime(60_000, limitMs + 1000)).toBe(61);
    expect(toExptime(40 * 24 * 3600 * 1000, limitMs + 1000)).toBe(0);
  });
});

describe('copyExptime', () => {
  const now = 1_700_000_000_000;
  const envelope = (expires?: number | null) => JSON.stringify({ value: 'v', expires });

  it('copies with the remaining whole seconds of a Keyv envelope, never more', () => {
    expect(copyExptime(envelope(now + 10_999), 0, now)).toBe(10);
    expect(copyExptime(envelope(now + 10_000), 60_000, now)).toBe(10);
    expect(copyExptime(envelope(now + 1_000), 0, now)).toBe(1);
    // The original was stored with toExptime: never shorter than the copy.
    for (const ttl of [1_000, 1_500, 59_999, 3_600_000]) {
      const copy = copyExptime(envelope(now + ttl), 0, now)!;
      expect(copy).toBeLessThanOrEqual(toExptime(ttl, now));
    }
  });

  it('does not copy what has under a second left or already expired', () => {
    expect(copyExptime(envelope(now + 999), 0, now)).toBeUndefined();
    expect(copyExptime(envelope(now - 5_000), 0, now)).toBeUndefined();
  });

  it('copies beyond 30 days as an absolute time, and as "no expiry" past 2038 like the original', () => {
    const expires = now + (MAX_RELATIVE_EXPTIME + 10) * 1000;
    expect(copyExptime(envelope(expires), 0, now)).toBe(Math.floor(expires / 1000));
    expect(copyExptime(envelope((MAX_EXPTIME + 10) * 1000), 0, now)).toBe(0);
  });

  it('copies an entry without expires only when the store has no default ttl', () => {
    expect(copyExptime(envelope(), 0, now)).toBe(0);
    expect(copyExptime(envelope(null), 0, now)).toBe(0);
    expect(copyExptime(envelope(), 60_000, now)).toBeUndefined();
    expect(copyExptime(envelope(null), 60_000, now)).toBeUndefined();
  });

  it('does not copy what is not an envelope', () => {
    expect(copyExptime('plain', 0, now)).toBeUndefined();
    expect(copyExptime('{"value":', 0, now)).toBeUndefined();
    expect(copyExptime('{"other":1}', 0, now)).toBeUndefined();
    expect(copyExptime(JSON.stringify({ value: 1, expires: 'soon' }), 0, now)).toBeUndefined();
    expect(copyExptime(Buffer.from(envelope()), 0, now)).toBeUndefined();
    expect(copyExptime(42, 0, now)).toBeUndefined();
  });
});
