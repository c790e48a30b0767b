import { describe, expect, it } from 'vitest';
import { MAX_EXPTIME, MAX_RELATIVE_EXPTIME, toExptime } from './ttl.js';

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
