import { describe, expect, it } from 'vitest';
import type { Member } from '../../discovery/member.js';
import { memberId } from '../../discovery/member.js';
import { HashRing } from '../ring/hash-ring.js';
import { A, B, C, setup } from './memcached-pool.fixture.js';
import type { FakeMember } from './memcached-pool.fixture.js';
import type { MemcachedPool } from './memcached-pool.js';
import { waitFor } from '../../../test/support/wait-for.js';

/** Keys owned by `owner` on the ring of `members`. */
function keysOwnedBy(members: Member[], owner: Member, count: number): string[] {
  const ring = new HashRing(members);
  const keys: string[] = [];
  for (let i = 0; keys.length < count && i < 10_000; i++) {
    if (memberId(ring.get(`k${i}`)!) === memberId(owner)) keys.push(`k${i}`);
  }
  return keys;
}

/** Fail `fake` until the pool ejected it (bounded). */
async function eject(pool: MemcachedPool, fake: FakeMember): Promise<void> {
  fake.fail = 'connection';
  const id = memberId(fake.member);
  for (let i = 0; i < 20 && pool.stats().ring.includes(id); i++) await pool.get(`probe-${i}`);
  expect(pool.stats().ring).not.toContain(id);
}

describe('StaleCopyGuard (through the pool, in-memory members)', () => {
  it('a member that kept its data is back at once; keys written elsewhere meanwhile are cleared on it before they are read there', async () => {
    const { pool, fakes } = setup([A, B]);
    const keys = keysOwnedBy([A, B], A, 10);
    for (const key of keys) expect(await pool.set(key, 'old', 0)).toBe(true);
    const a = fakes.get(memberId(A))!;
    let readmitted = 0;
    pool.on('readmit', () => readmitted++);
    await eject(pool, a);
    // Written while A is out: B holds the latest; A still holds 'old' (it kept its data).
    for (const key of keys.slice(0, 5)) expect(await pool.set(key, 'new', 0)).toBe(true);
    a.fail = undefined;
    await waitFor('A back on the ring', () => readmitted === 1, 2_000);
    // Never the overwritten value: cleared on A (a miss), or the latest.
    for (const key of keys.slice(0, 5)) expect(await pool.get(key)).toBeUndefined();
    for (const key of keys.slice(0, 5)) expect(a.items.has(key)).toBe(false);
    // The keys not written meanwhile still hit on A: nothing else was thrown away.
    for (const key of keys.slice(5)) expect(await pool.get(key)).toBe('old');
    expect(pool.stats().invalidations).toBeGreaterThanOrEqual(5);
  });

  it('a key rewritten after its owner came back is cleared on the neighbour when that owner leaves again', async () => {
    const { pool, fakes } = setup([A, B]);
    const [key] = keysOwnedBy([A, B], A, 1);
    const a = fakes.get(memberId(A))!;
    const b = fakes.get(memberId(B))!;
    let readmitted = 0;
    pool.on('readmit', () => readmitted++);
    await eject(pool, a);
    await pool.set(key, 'v1', 0); // on B, A's substitute
    a.items.clear(); // A restarts empty
    a.fail = undefined;
    await waitFor('A back', () => readmitted === 1, 2_000);
    await pool.set(key, 'v2', 0); // on A
    expect(b.items.get(key)).toBe('v1');
    await eject(pool, a); // A crashes again: B owns the key
    expect(await pool.get(key)).toBeUndefined(); // never v1
    expect(b.items.has(key)).toBe(false);
  });

  it('a member that joins and leaves: its keys, rewritten on it, are cleared on their previous owner', async () => {
    const { pool, fakes } = setup([A, B, C]);
    pool.setMembers([A, B]);
    const moved = keysOwnedBy([A, B, C], C, 5);
    for (const key of moved) await pool.set(key, 'before C', 0);
    pool.setMembers([A, B, C]);
    for (const key of moved) await pool.set(key, 'on C', 0);
    pool.setMembers([A, B]);
    for (const key of moved) expect(await pool.get(key)).toBeUndefined();
    for (const fake of fakes.values()) {
      for (const key of moved) expect(fake.items.get(key)).not.toBe('before C');
    }
  });

  it('more keys written than it remembers: a ring change asks the policy to make every key unreachable', async () => {
    const untracked: string[] = [];
    const { pool } = setup([A, B, C], {
      trackedKeys: 3,
      policy: { untracked: (reason) => untracked.push(reason) },
    });
    pool.setMembers([A, B]);
    for (let i = 0; i < 3; i++) await pool.set(`t${i}`, 'v', 0);
    pool.setMembers([A, B, C]);
    expect(untracked).toEqual([]); // all three remembered: cleared key by key
    for (let i = 0; i < 4; i++) await pool.set(`u${i}`, 'v', 0);
    pool.setMembers([A, B]);
    expect(untracked).toHaveLength(1);
    expect(untracked[0]).toMatch(/more keys were written than the 3/);
    expect(pool.stats().trackedKeys).toBe(0);
  });

  it('with no member on the ring, ejected members are probed within a second, whatever retryTimeout says', async () => {
    const { pool, fakes } = setup([A], { retryTimeout: 60_000 });
    const a = fakes.get(memberId(A))!;
    await eject(pool, a);
    a.fail = undefined;
    await waitFor(
      'A back although retryTimeout is a minute',
      () => pool.stats().ring.length === 1,
      3_000,
    );
  });
});
