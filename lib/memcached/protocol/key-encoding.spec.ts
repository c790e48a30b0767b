import { describe, expect, it } from 'vitest';
import { ENCODED_KEY_MARKER, encodeKey, isSafeKey, MAX_KEY_LENGTH } from './key-encoding.js';

describe('encodeKey', () => {
  it('passes ordinary keys through unchanged', () => {
    for (const key of ['foo', 'keyv:abc:user:42', 'a'.repeat(MAX_KEY_LENGTH), '{"json":1}']) {
      expect(isSafeKey(key)).toBe(true);
      expect(encodeKey(key)).toBe(key);
    }
  });

  it('encodes keys memcached cannot take into safe, fixed-size keys', () => {
    const unsafe = [
      '',
      'has space',
      'a\r\nflush_all',
      'tab\there',
      'del\x7f',
      'nul\0',
      'ünïcödé',
      '日本語',
      'a'.repeat(MAX_KEY_LENGTH + 1),
      'k'.repeat(1000),
      `${ENCODED_KEY_MARKER}looks-encoded`,
    ];
    const encoded = unsafe.map(encodeKey);
    for (const key of encoded) {
      expect(key.startsWith(ENCODED_KEY_MARKER)).toBe(true);
      expect(isSafeKey(key.slice(1))).toBe(true);
      expect(key.length).toBeLessThanOrEqual(MAX_KEY_LENGTH);
      expect(key).toMatch(/^[\x21-\x7e]+$/);
    }
    expect(new Set(encoded).size).toBe(unsafe.length);
  });

  it('never maps two different keys to the same memcached key', () => {
    const safe = 'plain';
    const marker = `${ENCODED_KEY_MARKER}${safe}`;
    expect(encodeKey(safe)).not.toBe(encodeKey(marker));
    // An encoded key given back as a key is itself re-encoded, not taken as is.
    const once = encodeKey('a b');
    expect(encodeKey(once)).not.toBe(once);
    expect(encodeKey('a b')).toBe(once);
  });

  it('keeps keys with different lone surrogates apart', () => {
    // UTF-8 would turn each of these into U+FFFD and hash them alike.
    const illFormed = ['\uD800', '\uD801', '\uDC00', 'a\uD800', '\uD800a', '\uD800\uD800'];
    const encoded = illFormed.map(encodeKey);
    expect(new Set(encoded).size).toBe(illFormed.length);
    // Nor do they collide with the well-formed keys UTF-8 would make of them.
    expect(encodeKey('\uD800')).not.toBe(encodeKey('\uFFFD'));
    expect(encodeKey('a\uD800')).not.toBe(encodeKey('a\uFFFD'));
    for (const key of encoded) {
      expect(key).toMatch(/^~~[A-Za-z0-9_-]{43}$/);
      expect(key.length).toBeLessThanOrEqual(MAX_KEY_LENGTH);
    }
    // Deterministic, and a valid surrogate pair is still hashed as UTF-8 (encoding unchanged).
    expect(encodeKey('\uD800')).toBe(encodeKey('\uD800'));
    expect(encodeKey('😀')).toMatch(/^~[A-Za-z0-9_-]{43}$/);
    expect(encodeKey('\uD83D\uDE00')).toBe(encodeKey('😀'));
  });
});
