import { afterEach, describe, expect, it } from 'vitest';
import type { Member } from '../../discovery/member.js';
import { memberId } from '../../discovery/member.js';
import type { MemcachedError } from '../../errors/memcached.errors.js';
import { MemcachedMemberError, MemcachedReplyError } from '../../errors/memcached.errors.js';
import type { CommandOutcome } from './command-observer.js';
import { HashRing } from '../ring/hash-ring.js';
import type { MemberLink, StoreStatus } from '../protocol/member-connection.js';
import type { MemcachedPoolOptions } from './memcached-pool.js';
import { MemcachedPool } from './memcached-pool.js';
import { waitFor } from '../../../test/support/wait-for.js';

/** An in-memory member behind the connection seam; `fail` makes every command fail so. */
class FakeMember {
  readonly items = new Map<string, unknown>();
  fail: 'connection' | 'server-error' | 'out-of-memory' | 'bad-probe' | undefined;
  commands = 0;

  constructor(readonly member: Member) {}

  link(): MemberLink {
    const check = (): void => {
      this.commands++;
      const id = memberId(this.member);
      if (this.fail === 'connection') throw new MemcachedMemberError(id, new Error('reset'));
      if (this.fail === 'server-error') throw new MemcachedReplyError(id, 'SERVER_ERROR broken');
      if (this.fail === 'out-of-memory') {
        throw new MemcachedReplyError(id, 'SERVER_ERROR out of memory storing object');
      }
    };
    return {
      get: async (key) => {
        check();
        if (this.fail === 'bad-probe' && key.startsWith('~~~')) return 'garbled';
        return this.items.get(key);
      },
      getMany: async (keys) => {
        check();
        return keys.map((key) => this.items.get(key));
      },
      store: async (verb, key, value): Promise<StoreStatus> => {
        check();
        if (verb === 'add' && this.items.has(key)) return 'NOT_STORED';
        this.items.set(key, value);
        return 'STORED';
      },
      delete: async (key) => {
        check();
        return this.items.delete(key);
      },
      stats: async () => {
        check();
        return [['uptime', '100000']];
      },
      close: () => {},
    };
  }
}

const A = { host: '10.0.0.1', port: 11211 };
const B = { host: '10.0.0.2', port: 11211 };
const C = { host: '10.0.0.3', port: 11211 };
const pools: MemcachedPool[] = [];
/** Short timeouts: ejections and probes happen within a test. */
const POOL_OPTIONS = {
  connectTimeout: 100,
  commandTimeout: 100,
  maxConnections: 1,
  failureLimit: 2,
  retryTimeout: 20,
};

function setup(
  members: Member[],
  options: Partial<MemcachedPoolOptions> = {},
): { pool: MemcachedPool; fakes: Map<string, FakeMember>; errors: MemcachedError[] } {
  const fakes = new Map(members.map((m) => [memberId(m), new FakeMember(m)]));
  const pool = new MemcachedPool({
    ...POOL_OPTIONS,
    createLink: (member) => fakes.get(memberId(member))!.link(),
    ...options,
  });
  pools.push(pool);
  const errors: MemcachedError[] = [];
  pool.on('failure', (error) => errors.push(error));
  pool.setMembers(members);
  return { pool, fakes, errors };
}

afterEach(() => {
  while (pools.length > 0) pools.pop()!.close();
});

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

  it('keeps a stale member out while the policy refuses it, and admits it once it agrees', async () => {
    let admit = false;
    const asked: string[] = [];
    const { pool, fakes } = setup([A, B], {
      policy: {
        admitStale: (member) => {
          asked.push(member);
          return admit;
        },
      },
    });
    const readmitted: Array<[string, boolean]> = [];
    pool.on('readmit', (member, stale) => readmitted.push([member, stale]));
    const a = fakes.get(memberId(A))!;
    a.fail = 'connection';
    for (let i = 0; i < 10 && pool.stats().ring.includes(memberId(A)); i++) {
      await pool.getMany(Array.from({ length: 10 }, (_, k) => `p${k}`));
    }
    a.fail = undefined;
    // A write while it is out: what it kept may be stale now.
    await pool.set('p0', 'new', 0);
    await waitFor('the policy asked twice', () => asked.length >= 2, 2_000);
    expect(readmitted).toEqual([]);
    admit = true;
    await waitFor('readmission', () => readmitted.length > 0, 2_000);
    expect(readmitted).toEqual([[memberId(A), true]]);
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
