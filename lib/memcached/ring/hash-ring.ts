import { hash } from 'node:crypto';
import type { Member } from '../../discovery/member.js';

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
  return md5Ascii(key) ? md5Out[0] >>> 0 : hash('md5', key, 'buffer').readUInt32LE(0);
}

// MD5 (RFC 1321) in plain JS for ASCII input: a native hash call costs more than the hash itself
// for short keys, and this runs on every operation (and 40 times per member on a ring rebuild).
const MD5_K = Int32Array.from({ length: 64 }, (_, i) =>
  Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32),
);
const MD5_S = Int8Array.from([7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21]);
const md5Block = new Int32Array(16);
/** The digest of the latest `md5Ascii` call, as four little-endian words. */
const md5Out = new Int32Array(4);

/**
 * MD5 of `input` into `md5Out`; false (and `md5Out` untouched) when `input` is not ASCII, for
 * the caller to fall back to node:crypto. One loop per round: no per-step branch on the round.
 */
function md5Ascii(input: string): boolean {
  const length = input.length;
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
      const code = input.charCodeAt(base + j);
      if (code > 0x7f) return false;
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
    let f: number;
    let s: number;
    for (let i = 0; i < 16; i++) {
      f = (((b & c) | (~b & d)) + a + MD5_K[i] + m[i]) | 0;
      s = MD5_S[i & 3];
      a = d;
      d = c;
      c = b;
      b = (b + ((f << s) | (f >>> (32 - s)))) | 0;
    }
    for (let i = 16; i < 32; i++) {
      f = (((d & b) | (~d & c)) + a + MD5_K[i] + m[(5 * i + 1) & 15]) | 0;
      s = MD5_S[4 | (i & 3)];
      a = d;
      d = c;
      c = b;
      b = (b + ((f << s) | (f >>> (32 - s)))) | 0;
    }
    for (let i = 32; i < 48; i++) {
      f = ((b ^ c ^ d) + a + MD5_K[i] + m[(3 * i + 5) & 15]) | 0;
      s = MD5_S[8 | (i & 3)];
      a = d;
      d = c;
      c = b;
      b = (b + ((f << s) | (f >>> (32 - s)))) | 0;
    }
    for (let i = 48; i < 64; i++) {
      f = ((c ^ (b | ~d)) + a + MD5_K[i] + m[(7 * i) & 15]) | 0;
      s = MD5_S[12 | (i & 3)];
      a = d;
      d = c;
      c = b;
      b = (b + ((f << s) | (f >>> (32 - s)))) | 0;
    }
    a0 = (a0 + a) | 0;
    b0 = (b0 + b) | 0;
    c0 = (c0 + c) | 0;
    d0 = (d0 + d) | 0;
  }
  md5Out[0] = a0;
  md5Out[1] = b0;
  md5Out[2] = c0;
  md5Out[3] = d0;
  return true;
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
  private readonly pointOwners: Uint16Array;

  /** @param members in the order the caller wants (sorted by `memberId` for stable placement). */
  constructor(readonly members: readonly T[]) {
    if (members.length > 0xffff) throw new RangeError('a hash ring holds at most 65535 members');
    const total = members.length * POINTS_PER_MEMBER;
    // value * 2^16 + owner is exact in a double and sorts by value, then owner (deterministic ties).
    const packed = new Float64Array(total);
    let n = 0;
    for (let m = 0; m < members.length; m++) {
      for (let i = 0; i < POINTS_PER_MEMBER / POINTS_PER_DIGEST; i++) {
        const name = pointName(members[m], i);
        if (md5Ascii(name)) {
          for (let p = 0; p < POINTS_PER_DIGEST; p++) packed[n++] = (md5Out[p] >>> 0) * 0x10000 + m;
        } else {
          const digest = hash('md5', name, 'buffer');
          for (let p = 0; p < POINTS_PER_DIGEST; p++) {
            packed[n++] = digest.readUInt32LE(p * 4) * 0x10000 + m;
          }
        }
      }
    }
    packed.sort();
    this.points = new Uint32Array(total);
    this.pointOwners = new Uint16Array(total);
    for (let i = 0; i < total; i++) {
      const owner = packed[i] % 0x10000;
      this.pointOwners[i] = owner;
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
    return this.pointOwners[low === length ? 0 : low];
  }

  /**
   * The ketama hash the latest `indexOf` computed, NaN when it computed none (a ring of one
   * member or none): lets a caller keep it without hashing the key again.
   */
  lastHash = NaN;

  /** Index into `members` of the member owning `key`, or -1 for an empty ring. */
  indexOf(key: string): number {
    const size = this.members.length;
    // One member owns every key: skip the MD5.
    if (size <= 1) {
      this.lastHash = NaN;
      return size - 1;
    }
    const hashValue = ketamaHash(key);
    this.lastHash = hashValue;
    return this.indexOfHash(hashValue);
  }

  /**
   * Indexes into `members` of the first `n` distinct members clockwise from `key`'s point, the
   * owner first (fewer when the ring holds fewer members): where a key and its replicas live.
   * Removing the owner from the ring makes the second one the owner, so replicas keep serving.
   */
  owners(key: string, n: number): number[] {
    const count = Math.min(n, this.members.length);
    if (count <= 1) return count === 1 ? [this.indexOf(key)] : [];
    return this.ownersOfHash(ketamaHash(key), n);
  }

  /** `owners` of a key whose ketama hash is `hashValue`. */
  ownersOfHash(hashValue: number, n: number): number[] {
    const count = Math.min(n, this.members.length);
    if (count <= 1) return count === 1 ? [this.indexOfHash(hashValue)] : [];
    const points = this.points;
    const length = points.length;
    let position = 0;
    let high = length;
    while (position < high) {
      const mid = (position + high) >>> 1;
      if (points[mid] < hashValue) position = mid + 1;
      else high = mid;
    }
    const found: number[] = [];
    // Every member has points, so a full turn finds `count` distinct ones.
    for (let step = 0; step < length && found.length < count; step++) {
      const owner = this.pointOwners[(position + step) % length];
      if (!found.includes(owner)) found.push(owner);
    }
    return found;
  }

  /** The member owning `key`, or undefined for an empty ring. */
  get(key: string): T | undefined {
    const index = this.indexOf(key);
    return index < 0 ? undefined : this.members[index];
  }
}
