// Members in memory behind the connection seam, for the pool's unit specs.
import { afterEach } from 'vitest';
import type { Member } from '../../discovery/member.js';
import { memberId } from '../../discovery/member.js';
import type { MemcachedError } from '../../errors/memcached.errors.js';
import { MemcachedMemberError, MemcachedReplyError } from '../../errors/memcached.errors.js';
import type { MemberLink, StoreStatus } from '../protocol/member-connection.js';
import type { MemcachedPoolOptions } from './memcached-pool.js';
import { MemcachedPool } from './memcached-pool.js';

/** An in-memory member behind the connection seam; `fail` makes every command fail so. */
export class FakeMember {
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

export const A = { host: '10.0.0.1', port: 11211 };
export const B = { host: '10.0.0.2', port: 11211 };
export const C = { host: '10.0.0.3', port: 11211 };
/** Pools closed after each spec (`setup` adds its own; add others a spec builds). */
export const pools: MemcachedPool[] = [];
/** Short timeouts: ejections and probes happen within a test. */
export const POOL_OPTIONS = {
  connectTimeout: 100,
  commandTimeout: 100,
  maxConnections: 1,
  failureLimit: 2,
  retryTimeout: 20,
};

export function setup(
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

// Every pool a spec made is closed after it: no timer outlives its test.
afterEach(() => {
  while (pools.length > 0) pools.pop()!.close();
});
