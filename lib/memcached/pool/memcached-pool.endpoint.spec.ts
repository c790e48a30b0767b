import { afterEach, describe, expect, it } from 'vitest';
import { memberId } from '../../discovery/member.js';
import type { MemcachedError } from '../../errors/memcached.errors.js';
import { MemcachedMemberError } from '../../errors/memcached.errors.js';
import type { MemberLink } from '../protocol/member-link.js';
import { MemcachedPool } from './memcached-pool.js';
import { RECONNECT_MAX_MS } from './reconnect-backoff.js';
import { waitFor } from '../../../test/support/wait-for.js';

// `endpointMode`: the one member is an endpoint in front of a fleet (discovery 'endpoint').

const ENDPOINT = { host: 'mycache.serverless.example', port: 11211 };
const ID = memberId(ENDPOINT);

/** An in-memory endpoint; while `down`, every command fails at the connection level. */
class FakeEndpoint {
  readonly items = new Map<string, unknown>();
  down = false;
  commands = 0;

  link(): MemberLink {
    const check = async (): Promise<void> => {
      this.commands++;
      if (this.down) throw new MemcachedMemberError(ID, new Error('ECONNREFUSED'));
    };
    return {
      get: async (key) => (await check(), this.items.get(key)),
      getMany: async (keys) => (await check(), keys.map((key) => this.items.get(key))),
      store: async (_verb, key, value) => (await check(), this.items.set(key, value), 'STORED'),
      delete: async (key) => (await check(), this.items.delete(key)),
      stats: async () => (await check(), [['uptime', '100000']]),
      close: () => {},
    };
  }
}

const pools: MemcachedPool[] = [];

function setup(endpointMode: boolean) {
  const endpoint = new FakeEndpoint();
  const pool = new MemcachedPool({
    connectTimeout: 100,
    commandTimeout: 100,
    maxConnections: 1,
    failureLimit: 2,
    retryTimeout: 20,
    endpointMode,
    createLink: () => endpoint.link(),
  });
  pools.push(pool);
  const errors: MemcachedError[] = [];
  const ejected: string[] = [];
  pool.on('failure', (error) => errors.push(error));
  pool.on('eject', (member) => ejected.push(member));
  pool.setMembers([ENDPOINT]);
  return { pool, endpoint, errors, ejected };
}

afterEach(() => {
  while (pools.length > 0) pools.pop()!.close();
});

describe('MemcachedPool in endpoint mode', () => {
  it('never ejects the endpoint, however many failures (a pool of servers ejects it)', async () => {
    // Control: the same failures eject a member of an ordinary pool, emptying its ring.
    const ordinary = setup(false);
    ordinary.endpoint.down = true;
    for (let i = 0; i < 10; i++) await ordinary.pool.get(`k${i}`);
    expect(ordinary.ejected).toEqual([ID]);
    expect(ordinary.pool.stats().ring).toEqual([]);

    const { pool, endpoint, errors, ejected } = setup(true);
    endpoint.down = true;
    for (let i = 0; i < 10; i++) {
      expect(await pool.get(`k${i}`)).toBeUndefined();
      expect(await pool.set(`k${i}`, 'v', 0)).toBe(false);
    }
    expect(ejected).toEqual([]);
    expect(pool.stats().ring).toEqual([ID]);
    expect(pool.stats().members[0]).toMatchObject({ ejectedUntil: undefined, ejections: 0 });
    expect(pool.stats().members[0].failures).toBeGreaterThanOrEqual(20);
    // Every failure was reported as the endpoint's, none as "no member left".
    expect(errors).toHaveLength(20);
    expect(errors.every((e) => e instanceof MemcachedMemberError && e.member === ID)).toBe(true);
  });

  it('spaces out reconnects: a burst of calls while the endpoint is down reaches it at most once', async () => {
    const { pool, endpoint } = setup(true);
    endpoint.down = true;
    await pool.get('a');
    await pool.get('b');
    const before = endpoint.commands;
    const burst = await Promise.all(Array.from({ length: 50 }, (_, i) => pool.get(`k${i}`)));
    expect(burst.every((value) => value === undefined)).toBe(true);
    expect(endpoint.commands - before).toBeLessThanOrEqual(1);
  });

  it('serves again, with what it kept, once the endpoint answers: no probe, no readmission', async () => {
    const { pool, endpoint } = setup(true);
    expect(await pool.set('kept', 'value', 0)).toBe(true);
    endpoint.down = true;
    for (let i = 0; i < 5; i++) await pool.get('kept');
    endpoint.down = false;
    // Within one back-off step at most.
    await waitFor(
      'a get through again',
      async () => (await pool.get('kept')) === 'value',
      RECONNECT_MAX_MS + 1_000,
    );
    expect(pool.stats().members[0]).toMatchObject({ readmissions: 0, ejections: 0, failures: 0 });
  });
});
