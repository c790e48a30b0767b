import { describe, expect, it } from 'vitest';
import { MAX_RELATIVE_EXPTIME, toExptime } from './ttl.js';

describe('toExptime', () => {
  const now = 1_700_000_000_000;

  it('keeps "no TTL" as no expiry', () => {
    expect(toExptime(undefined, now)).toBe(0);
    expect(toExptime(0, now)).toBe(0);
    expect(toExptime(Number.POSITIVE_INFINITY, now)).toBe(0);
    expect(toExptime(Number.NaN, now)).toBe(0);
  });

  it('rounds up so a short TTL never becomes "never expires"', () => {
    expect(toExptime(1, now)).toBe(1);
    expect(toExptime(300, now)).toBe(1);
    expect(toExptime(1000, now)).toBe(1);
    expect(toExptime(1500, now)).toBe(2);
  });

  it('sends a negative TTL as already expired', () => {
    expect(toExptime(-5, now)).toBe(-1);
  });

  it('sends more than 30 days as an absolute Unix time', () => {
    expect(toExptime(MAX_RELATIVE_EXPTIME * 1000, now)).toBe(MAX_RELATIVE_EXPTIME);
    const fortyDays = 40 * 24 * 3600 * 1000;
    expect(toExptime(fortyDays, now)).toBe((now + fortyDays) / 1000);
    expect(toExptime(MAX_RELATIVE_EXPTIME * 1000 + 1, now)).toBe(
      Math.ceil(now / 1000) + MAX_RELATIVE_EXPTIME + 1,
    );
  });
});
