/**
 * The end-to-end key check carried in memcached's 32-bit `flags`: a value we write carries 24 bits
 * of the FNV-1a hash of its key, a marker bit and its type, so a reply that brings another key's
 * bytes (a buggy proxy, a confused member) reads as a miss instead of a wrong value.
 *
 * Layout: bits 8–31 the key's hash, bit 7 the marker, bits 1–3 memcache-client's type bits (so
 * values written by older versions through memcache-client keep their type). Flags with only type
 * bits set (0 for a string) were written by an older version: accepted unchecked, so a rolling
 * deploy does not empty the cache.
 */

/** memcache-client's type bits (its `ValueFlags`). */
export const TYPE_STRING = 0;
export const TYPE_JSON = 1 << 1;
export const TYPE_NUMERIC = 1 << 2;
export const TYPE_BINARY = 1 << 3;
/** memcache-client's compression bit: never written by us, not readable without its compressor. */
export const COMPRESSED = 1;
const TYPE_BITS = TYPE_JSON | TYPE_NUMERIC | TYPE_BINARY;
/** Set on every value written with a key check. */
export const CHECKED = 1 << 7;
const CHECK_BITS = 0xffffff00;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a of `key` (memcached keys are printable ASCII: one byte per character). */
export function keyHash(key: string): number {
  let hash = FNV_OFFSET;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), FNV_PRIME);
  return hash >>> 0;
}

/** The flags to store a value of `type` under `key` with. */
export function flagsFor(key: string, type: number): number {
  return ((keyHash(key) & CHECK_BITS) | CHECKED | type) >>> 0;
}

/** What reading `flags` for a key whose FNV-1a is `hash` yields. */
export const FLAGS_MISMATCH = -1;
export const FLAGS_UNREADABLE = -2;

/**
 * The value type of `flags` read for a key hashing to `hash`: a `TYPE_*`, `FLAGS_MISMATCH` when
 * the value carries another key's check (or flags we never write), `FLAGS_UNREADABLE` for a
 * compressed value of an older version.
 */
export function typeOfFlags(flags: number, hash: number): number {
  if ((flags & CHECKED) !== 0) {
    return ((flags ^ hash) & CHECK_BITS) === 0 ? flags & TYPE_BITS : FLAGS_MISMATCH;
  }
  if ((flags & ~(TYPE_BITS | COMPRESSED)) !== 0) return FLAGS_MISMATCH;
  return (flags & COMPRESSED) !== 0 ? FLAGS_UNREADABLE : flags & TYPE_BITS;
}
