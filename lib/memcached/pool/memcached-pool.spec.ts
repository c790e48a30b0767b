import { describe, expect, it } from 'vitest';
import type { Member } from '../../discovery/member.js';
import { memberId } from '../../discovery/member.js';
import type { CommandOutcome } from './command-observer.js';
import { HashRing } from '../ring/hash-ring.js';
import { MemcachedMemberError } from '../../errors/memcached.errors.js';
import { MemcachedPool } from './memcached-pool.js';
import { A, B, C, FakeMember, POOL_OPTIONS, pools, setup } from './memcached-pool.fixture.js';
import { waitFor } from '../../../test/support/wait-for.js';

describe('MemcachedPool (in-memory members)', () => {
  it('routes each key to its ketama owner, for single and multi-key commands', async () => {
    const { pool, fakes } = setup([A, B, C]);
    const ring = new HashRing([A, B, C]);
    const keys = Array.from({ length: 60 }, (_, i) => `k${i}`);
    expect(await pool.setMany(keys.map((key) => ({ key, value: key, exptime: 0 })))).toEqual(
      keys.map(() => true),
    );
    for (const key of keys) {
      const owner = memberId(ring.members[ring.indexOf(key)]);
      expect([...fakes].filter(([, f]) => f.items.has(key)).map(([id]) => id)).toEqual([owner]);
    }
    expect(await pool.getMany(keys)).toEqual(keys);
    expect(await pool.get('k1')).toBe('k1');
    expect(await pool.delete('k1')).toBe(true);
    expect(await pool.get('k1')).toBeUndefined();
  });

  it('ejects a member after failureLimit breaking failures; its keys go to the next member', async () => {
    const { pool, fakes, errors } = setup([A, B]);
    const ejected: string[] = [];
    pool.on('eject', (member) => ejected.push(member));
    fakes.get(memberId(A))!.fail = 'connection';
    const keys = Array.from({ length: 20 }, (_, i) => `e${i}`);
    await pool.getMany(keys);
    await pool.getMany(keys);
    expect(ejected).toEqual([memberId(A)]);
    expect(pool.stats().ring).toEqual([memberId(B)]);
    expect(errors.every((e) => e instanceof MemcachedMemberError)).toBe(true);
    expect(await pool.set('e0', 'v', 0)).toBe(true);
    expect(fakes.get(memberId(B))!.items.get('e0')).toBe('v');
  });

  it('counts SERVER_ERROR towards ejection, except memcached’s refusals of one item', async () => {
    const { pool, fakes, errors } = setup([A]);
    fakes.get(memberId(A))!.fail = 'out-of-memory';
    for (let i = 0; i < 5; i++) expect(await pool.set(`s${i}`, 'v', 0)).toBe(false);
    expect(pool.stats().ring).toEqual([memberId(A)]);
    expect(errors).toHaveLength(5);
    fakes.get(memberId(A))!.fail = 'server-error';
    await pool.get('x');
    await pool.get('x');
    expect(pool.stats().ring).toEqual([]);
  });

  it('re-admits only after a real round trip; a member that garbles it stays out', async () => {
    const { pool, fakes } = setup([A, B]);
    const readmitted: Array<[string, boolean]> = [];
    pool.on('readmit', (member, stale) => readmitted.push([member, stale]));
    const a = fakes.get(memberId(A))!;
    a.fail = 'connection';
    await pool.get('r1');
    await pool.get('r1');
    await pool.getMany(['r1', 'r2', 'r3', 'r4', 'r5', 'r6']);
    await waitFor('ejection', () => !pool.stats().ring.includes(memberId(A)), 2_000);
    // Answers stats and set, but its get of the probe key reads wrong.
    a.fail = 'bad-probe';
    const probesBefore = a.commands;
    await waitFor('two probes', () => a.commands >= probesBefore + 6, 2_000);
    expect(readmitted).toEqual([]);
    expect(pool.stats().ring).toEqual([memberId(B)]);
    a.fail = undefined;
    await waitFor('readmission', () => readmitted.length > 0, 2_000);
    // No write while it was out: what it kept is not stale.
    expect(readmitted).toEqual([[memberId(A), false]]);
  });

  it('backs off when a member is ejected again soon after its readmission', async () => {
    const { pool, fakes } = setup([A, B], { retryTimeout: 40 });
    const a = fakes.get(memberId(A))!;
    const outFor: number[] = [];
    pool.on('eject', () =>
      outFor.push(
        pool.stats().members.find((m) => m.member === memberId(A))!.ejectedUntil! - Date.now(),
      ),
    );
    let readmissions = 0;
    pool.on('readmit', () => readmissions++);
    for (let cycle = 0; cycle < 3; cycle++) {
      a.fail = 'connection';
      for (let i = 0; i < 10 && pool.stats().ring.includes(memberId(A)); i++) {
        await pool.getMany(Array.from({ length: 10 }, (_, k) => `b${k}`));
      }
      a.fail = undefined;
      await waitFor('readmission', () => readmissions > cycle, 2_000);
    }
    expect(outFor).toHaveLength(3);
    expect(outFor[1]).toBeGreaterThan(outFor[0] * 1.5);
    expect(outFor[2]).toBeGreaterThan(outFor[1] * 1.5);
  });

  it('reads a replica when the owner misses, and tells the observer each command once', async () => {
    const seen: string[] = [];
    const { pool, fakes } = setup([A, B, C], {
      replicas: 2,
      commandObserver: {
        start: (operation, member, size, reason) => {
          seen.push(`${operation} ${reason} ${size}`);
          return (outcome: CommandOutcome) => seen.push(`end ${outcome.hits ?? '-'}`);
        },
      },
    });
    expect(await pool.set('rk', 'v', 0)).toBe(true);
    const ring = new HashRing([A, B, C]);
    const [owner] = ring.owners('rk', 2).map((i) => memberId(ring.members[i]));
    fakes.get(owner)!.items.delete('rk');
    seen.length = 0;
    expect(await pool.get('rk')).toBe('v');
    expect(seen).toEqual(['get owner 1', 'end 0', 'get replica 1', 'end 1']);
    expect(pool.stats().members.reduce((sum, m) => sum + m.replicaReads, 0)).toBe(1);
  });

  it('warms up: reads the previous owner and copies to the new one; writes delete the old copy', async () => {
    const { pool, fakes } = setup([A, B], {
      warmupPeriod: 60_000,
      policy: { copyExptime: () => 0 },
    });
    const ownerIn = (members: Member[], key: string): string => {
      const ring = new HashRing(members);
      return memberId(ring.members[ring.indexOf(key)]);
    };
    const keys = Array.from({ length: 100 }, (_, i) => `w${i}`);
    const moved = keys.filter((key) => ownerIn([A, B, C], key) === memberId(C));
    expect(moved.length).toBeGreaterThan(2);
    await pool.setMany(keys.map((key) => ({ key, value: key, exptime: 0 })));
    const c = new FakeMember(C);
    fakes.set(memberId(C), c);
    pool.setMembers([A, B, C]);

    const [single, written, ...rest] = moved;
    expect(await pool.get(single)).toBe(single);
    await waitFor('the copy at the new owner', () => c.items.get(single) === single, 2_000);
    expect(await pool.getMany(rest)).toEqual(rest);

    expect(await pool.set(written, 'new', 0)).toBe(true);
    const previous = fakes.get(ownerIn([A, B], written))!;
    await waitFor('the delete at the previous owner', () => !previous.items.has(written), 2_000);
    c.items.delete(written); // evicted at the new owner: the old value must not come back
    expect(await pool.get(written)).toBeUndefined();
  });

  it('reads as silent misses once closed', async () => {
    const { pool, errors } = setup([A]);
    pool.close();
    expect(await pool.get('x')).toBeUndefined();
    expect(await pool.set('x', 'v', 0)).toBe(false);
    expect(errors).toEqual([]);
  });
});

describe('MemcachedPool membership', () => {
  it('reconnects a member whose address changed, keeping its place on the ring', async () => {
    const links: string[] = [];
    const fake = new FakeMember(A);
    const pool = new MemcachedPool({
      ...POOL_OPTIONS,
      createLink: (member) => {
        links.push(member.address ?? member.host);
        return fake.link();
      },
    });
    pools.push(pool);
    const named = { host: 'node-1.cache', port: 11211, address: '10.0.0.1' };
    pool.setMembers([named, B]);
    const ringBefore = pool.stats().ring;
    const keys = Array.from({ length: 40 }, (_, i) => `m${i}`);
    await pool.getMany(keys);
    pool.setMembers([{ ...named, address: '10.0.0.9' }, B]);
    await pool.getMany(keys);
    expect(links.filter((a) => a !== B.host)).toEqual(['10.0.0.1', '10.0.0.9']);
    expect(pool.stats().ring).toEqual(ringBefore);
    expect(pool.members().find((m) => m.host === 'node-1.cache')?.address).toBe('10.0.0.9');
  });
});
