import { hash } from 'node:crypto';
import type { Member } from '../discovery/member.js';

/** Points each member gets on the ring (libmemcached's weighted ketama: 40 digests × 4). */
export const POINTS_PER_MEMBER = 160;
const POINTS_PER_DIGEST = 4;
const MEMCACHED_DEFAULT_PORT = 11211;

/**
 * Name hashed for a member's point group `index`, as libmemcached writes it: `host-i` for the
 * default port, `host:port-i` otherwise.
 */
export function pointName(member: Member, index: number): string {
  return member.port === MEMCACHED_DEFAULT_PORT
    ? `${member.host}-${index}`
    : `${member.host}:${member.port}-${index}`;
}

/** Ketama hash of a key: the first 4 bytes of its MD5, little-endian. */
export function ketamaHash(key: string): number {
  const fast = md5FirstWordAscii(key);
  return fast >= 0 ? fast : hash('md5', key, 'buffer').readUInt32LE(0);
}

// MD5 (RFC 1321) in plain JS for ASCII keys: a native hash call costs more than the hash itself
// for short keys, and this runs on every operation. Only the first output word is returned.
const MD5_K = Int32Array.from({ length: 64 }, (_, i) =>
  Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32),
);
const MD5_S = Int8Array.from([7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21]);
const MD5_G = Uint8Array.from({ length: 64 }, (_, i) =>
  i < 16 ? i : i < 32 ? (5 * i + 1) % 16 : i < 48 ? (3 * i + 5) % 16 : (7 * i) % 16,
);
const md5Block = new Int32Array(16);

/** First little-endian word of MD5(key), or -1 when the key is not ASCII (the caller falls back). */
function md5FirstWordAscii(key: string): number {
  const length = key.length;
  const m = md5Block;
  let a0 = 0x67452301;
  let b0 = 0xefcdab89 | 0;
  let c0 = 0x98badcfe | 0;
  let d0 = 0x10325476;
  const blocks = ((length + 8) >>> 6) + 1;
  for (let block = 0; block < blocks; block++) {
    m.fill(0);
    const base = block << 6;
    const end = Math.min(length - base, 64);
    for (let j = 0; j < end; j++) {
      const code = key.charCodeAt(base + j);
      if (code > 0x7f) return -1;
      m[j >> 2] |= code << ((j & 3) << 3);
    }
    if (end >= 0 && end < 64) m[end >> 2] |= 0x80 << ((end & 3) << 3);
    if (block === blocks - 1) {
      m[14] = length << 3;
      m[15] = length >>> 29;
    }
    let a = a0;
    let b = b0;
    let c = c0;
    let d = d0;
    for (let i = 0; i < 64; i++) {
      let f: number;
      if (i < 16) f = (b & c) | (~b & d);
      else if (i < 32) f = (d & b) | (~d & c);
      else if (i < 48) f = b ^ c ^ d;
      else f = c ^ (b | ~d);
      f = (f + a + MD5_K[i] + m[MD5_G[i]]) | 0;
      a = d;
      d = c;
      c = b;
      const shift = MD5_S[((i >> 4) << 2) | (i & 3)];
      b = (b + ((f << shift) | (f >>> (32 - shift)))) | 0;
    }
    a0 = (a0 + a) | 0;
    b0 = (b0 + b) | 0;
    c0 = (c0 + c) | 0;
    d0 = (d0 + d) | 0;
  }
  return a0 >>> 0;
}

/**
 * Ketama consistent hash ring (libmemcached / twemproxy / 3rd-Eden `memcached` compatible), so a
 * key lands on the same member as with other languages' clients on the same pool, and
 * going from N to N+1 members moves about 1/(N+1) of the keys.
 */
export class HashRing<T extends Member = Member> {
  /** Point values, ascending. */
  private readonly points: Uint32Array;
  /** Index into `members` of the owner of each point. */
  private readonly owners: Uint16Array;

  /** @param members in the order the caller wants (sorted by `memberId` for stable placement). */
  constructor(readonly members: readonly T[]) {
    if (members.length > 0xffff) throw new RangeError('a hash ring holds at most 65535 members');
    const total = members.length * POINTS_PER_MEMBER;
    // value * 2^16 + owner is exact in a double and sorts by value, then owner (deterministic ties).
    const packed = new Float64Array(total);
    let n = 0;
    for (let m = 0; m < members.length; m++) {
      for (let i = 0; i < POINTS_PER_MEMBER / POINTS_PER_DIGEST; i++) {
        const digest = hash('md5', pointName(members[m], i), 'buffer');
        for (let p = 0; p < POINTS_PER_DIGEST; p++) {
          packed[n++] = digest.readUInt32LE(p * 4) * 0x10000 + m;
        }
      }
    }
    packed.sort();
    this.points = new Uint32Array(total);
    this.owners = new Uint16Array(total);
    for (let i = 0; i < total; i++) {
      const owner = packed[i] % 0x10000;
      this.owners[i] = owner;
      this.points[i] = (packed[i] - owner) / 0x10000;
    }
  }

  /** Number of members on the ring. */
  get size(): number {
    return this.members.length;
  }

  /** Index into `members` of the member owning `hashValue`, or -1 for an empty ring. */
  indexOfHash(hashValue: number): number {
    const points = this.points;
    const length = points.length;
    if (length === 0) return -1;
    // First point >= hash; past the last point wraps to the first.
    let low = 0;
    let high = length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (points[mid] < hashValue) low = mid + 1;
      else high = mid;
    }
    return this.owners[low === length ? 0 : low];
  }

  /** Index into `members` of the member owning `key`, or -1 for an empty ring. */
  indexOf(key: string): number {
    const size = this.members.length;
    // One member owns every key: skip the MD5.
    if (size <= 1) return size - 1;
    return this.indexOfHash(ketamaHash(key));
  }

  /** The member owning `key`, or undefined for an empty ring. */
  get(key: string): T | undefined {
    const index = this.indexOf(key);
    return index < 0 ? undefined : this.members[index];
  }
}
