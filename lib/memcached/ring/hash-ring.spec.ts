import { hash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Member } from '../../discovery/member.js';
import { HashRing, ketamaHash, pointName, POINTS_PER_MEMBER } from './hash-ring.js';

const m = (host: string, port = 11211): Member => ({ host, port });
const three = [m('10.0.0.1'), m('10.0.0.2'), m('10.0.0.3')];
const keys = Array.from({ length: 3000 }, (_, i) => `key:${i}`);

function placement(ring: HashRing, list: readonly string[]): string[] {
  return list.map((key) => {
    const member = ring.get(key)!;
    return `${member.host}:${member.port}`;
  });
}

describe('HashRing (ketama)', () => {
  it('names points as libmemcached does: host-i on 11211, host:port-i otherwise', () => {
    expect(pointName(m('10.0.0.1'), 0)).toBe('10.0.0.1-0');
    expect(pointName(m('10.0.0.1', 11212), 39)).toBe('10.0.0.1:11212-39');
    expect(pointName(m('fd00::5', 11212), 3)).toBe('fd00::5:11212-3');
  });

  // Expected values computed by an independent implementation (Python hashlib + bisect) of
  // libmemcached's weighted ketama: 40 MD5 digests of the point names, each split into four
  // little-endian uint32 points; a key hashes to the first 4 MD5 bytes, little-endian, and goes to
  // the first point >= its hash, wrapping around.
  it('hashes keys like libmemcached (first four MD5 bytes, little-endian)', () => {
    expect(ketamaHash('foo')).toBe(3675831724);
    expect(ketamaHash('user:42')).toBe(417323606);
  });

  it('computes the same MD5 word as node:crypto for keys of every length (one to five blocks)', () => {
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let length = 0; length <= 300; length++) {
      let key = '';
      for (let i = 0; i < length; i++) key += String.fromCharCode(33 + (next() % 94));
      expect(ketamaHash(key), `length ${length}`).toBe(hash('md5', key, 'buffer').readUInt32LE(0));
    }
    for (const key of ['日本語', 'é', 'a\u0080', '🙂'.repeat(40)]) {
      expect(ketamaHash(key)).toBe(hash('md5', key, 'buffer').readUInt32LE(0));
    }
  });

  it('places keys where libmemcached places them', () => {
    const ring = new HashRing(three);
    const expected: Record<string, string> = {
      foo: '10.0.0.2',
      bar: '10.0.0.2',
      baz: '10.0.0.1',
      'user:42': '10.0.0.1',
      'session:abc': '10.0.0.3',
      'keyv:hello': '10.0.0.1',
      d: '10.0.0.3',
      e: '10.0.0.1',
    };
    for (const [key, host] of Object.entries(expected)) expect(ring.get(key)?.host, key).toBe(host);

    const ports = new HashRing([m('127.0.0.1', 11212), m('127.0.0.1', 11213)]);
    const expectedPorts: Record<string, number> = {
      foo: 11213,
      bar: 11212,
      'session:abc': 11213,
      d: 11213,
      e: 11212,
    };
    for (const [key, port] of Object.entries(expectedPorts))
      expect(ports.get(key)?.port, key).toBe(port);
  });

  it('has 160 points per member and an empty ring owns nothing', () => {
    expect(POINTS_PER_MEMBER).toBe(160);
    const empty = new HashRing([]);
    expect(empty.get('foo')).toBeUndefined();
    expect(empty.indexOf('foo')).toBe(-1);
    expect(new HashRing([m('10.0.0.9')]).get('anything')?.host).toBe('10.0.0.9');
  });

  it('spreads 3,000 keys over 3 members at 20–47 % each', () => {
    const counts = new Map<string, number>();
    for (const owner of placement(new HashRing(three), keys)) {
      counts.set(owner, (counts.get(owner) ?? 0) + 1);
    }
    expect(counts.size).toBe(3);
    for (const count of counts.values()) {
      expect(count / keys.length).toBeGreaterThanOrEqual(0.2);
      expect(count / keys.length).toBeLessThanOrEqual(0.47);
    }
  });

  it('moves about a quarter of the keys when a 4th member joins (at most 35 %)', () => {
    const before = placement(new HashRing(three), keys);
    const after = placement(new HashRing([...three, m('10.0.0.4')]), keys);
    const moved = before.filter((owner, i) => owner !== after[i]);
    expect(moved.length / keys.length).toBeLessThanOrEqual(0.35);
    expect(moved.length / keys.length).toBeGreaterThan(0.1);
    // Keys only move to the new member.
    for (let i = 0; i < keys.length; i++) {
      if (before[i] !== after[i]) expect(after[i]).toBe('10.0.0.4:11211');
    }
  });

  it('moves only the removed member’s keys when a member leaves', () => {
    const before = placement(new HashRing(three), keys);
    const after = placement(new HashRing([three[0], three[2]]), keys);
    for (let i = 0; i < keys.length; i++) {
      if (before[i] !== '10.0.0.2:11211') expect(after[i]).toBe(before[i]);
      else expect(after[i]).not.toBe('10.0.0.2:11211');
    }
  });

  it('lists n distinct owners clockwise, the owner first, capped at the member count', () => {
    const four = [...three, m('10.0.0.4')];
    const ring = new HashRing(four);
    const seen = new Set<string>();
    for (const key of keys) {
      const owners = ring.owners(key, 2);
      expect(owners).toHaveLength(2);
      expect(owners[0]).toBe(ring.indexOf(key));
      expect(owners[1]).not.toBe(owners[0]);
      seen.add(owners.join());
      // A longer list starts with the shorter one; more than the members means every member.
      expect(ring.owners(key, 3).slice(0, 2)).toEqual(owners);
      expect(new Set(ring.owners(key, 9)).size).toBe(4);
      expect(ring.owners(key, 1)).toEqual([owners[0]]);
    }
    // Replicas spread too: every ordered pair of neighbours occurs, not a fixed successor.
    expect(seen.size).toBeGreaterThanOrEqual(8);
    expect(new HashRing([]).owners('k', 2)).toEqual([]);
    expect(new HashRing([three[0]]).owners('k', 2)).toEqual([0]);
  });

  it('makes the second owner the owner when the first leaves the ring', () => {
    const ring = new HashRing(three);
    for (const key of keys) {
      const [first, second] = ring.owners(key, 2).map((i) => three[i]);
      const without = new HashRing(three.filter((member) => member !== first));
      expect(without.get(key)).toBe(second);
    }
  });
});
