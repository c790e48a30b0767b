import Keyv from 'keyv';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { memberId } from '../../lib/discovery/member.js';
import { HashRing } from '../../lib/memcached/ring/hash-ring.js';
import { MemcachedStore } from '../../lib/memcached/store/memcached.store.js';
import type { MemcachedStoreOptions } from '../../lib/memcached/store/memcached.store.js';
import { startDnsServer } from '../support/dns-server.js';
import type { TestDnsServer } from '../support/dns-server.js';
import {
  freePort,
  memcachedAvailable,
  rawGet,
  rawGetMany,
  startMemcached,
  stopAllMemcached,
} from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { quietLogger } from '../support/quiet-logger.js';
import { waitFor } from '../support/wait-for.js';
import { readAll } from '../support/keyv-reads.js';
import { scaled } from '../support/timing.js';

// This file's loopback range: 127.0.14.x. One port for every member, as a headless Service gives.
const NAME = 'memcached.replicas.svc.cluster.local';
const KEYS = Array.from({ length: 1_200 }, (_, i) => `item:${i}`);
const TTL = 300_000;

/** Which of `keys` (raw, already prefixed) one server holds. */
async function held(server: MemcachedProcess, keys: readonly string[]): Promise<Set<string>> {
  return new Set((await rawGetMany(server, keys)).keys());
}

describe.runIf(memcachedAvailable())('replicas (real DNS and members)', () => {
  let dns: TestDnsServer;
  let port: number;
  let servers: MemcachedProcess[];
  let stores: MemcachedStore[] = [];
  let token: string;

  const members = () => servers.map((s) => ({ host: s.host, port: s.port }));
  const raw = (key: string) => `keyv:${token}:${key}`;
  /** `host:port` of the members holding `key` with `n` copies, owner first. */
  const ownersOf = (key: string, n: number) => {
    const ring = new HashRing(members());
    return ring.owners(raw(key), n).map((i) => memberId(ring.members[i]));
  };
  const memberStats = (store: MemcachedStore, server: MemcachedProcess) =>
    store.stats().members.find((m) => m.member === server.id)!;

  async function open(options: Partial<MemcachedStoreOptions>) {
    const store = new MemcachedStore({
      host: NAME,
      port,
      dnsServers: [dns.address],
      refreshInterval: 0,
      // Generous for the live members: members here are killed (refused at once), never hung.
      connectTimeout: scaled(1_000),
      commandTimeout: scaled(1_000),
      generationCacheTime: 600_000,
      // Replicas alone: no warm-up copies in the way.
      warmupPeriod: 0,
      logger: quietLogger,
      ...options,
    });
    stores.push(store);
    await store.ready();
    const keyv = new Keyv({ store });
    for (let i = 0; i < KEYS.length; i += 300) {
      const entries = KEYS.slice(i, i + 300).map((key) => ({
        key,
        value: `value of ${key}`,
        ttl: TTL,
      }));
      expect(await keyv.setMany(entries)).toEqual(entries.map(() => true));
    }
    token = (await rawGet(servers[0], 'keyv:~gen'))!;
    expect(token).toMatch(/^[0-9a-z]{9}\./);
    return { store, keyv };
  }

  /** SIGKILL, and wait (bounded) until its port refuses connections. */
  async function kill(server: MemcachedProcess): Promise<void> {
    server.kill('SIGKILL');
    await waitFor(
      `${server.id} to refuse connections`,
      () =>
        server.command('version\r\n').then(
          () => false,
          () => true,
        ),
      3_000,
    );
  }

  beforeAll(async () => {
    dns = await startDnsServer();
    port = await freePort('127.0.14.1');
    servers = await Promise.all(
      [1, 2, 3, 4].map((i) => startMemcached({ host: `127.0.14.${i}`, port })),
    );
    dns.setA(
      NAME,
      servers.map((s) => s.host),
    );
  });

  beforeEach(async () => {
    // Killed members come back (empty) for the next test; restart() after SIGKILL just starts.
    for (const server of servers) {
      const up = await server.command('version\r\n').then(
        () => true,
        () => false,
      );
      if (!up) await server.restart();
    }
    await Promise.all(servers.map((s) => s.command('flush_all\r\n')));
  });

  afterEach(async () => {
    await Promise.all(stores.map((s) => s.disconnect()));
    stores = [];
  });

  afterAll(async () => {
    await dns?.close();
    await stopAllMemcached();
  });

  it('stores each key on exactly its two owners; a delete reaches both copies', async () => {
    const { keyv } = await open({ replicas: 2 });
    const rawKeys = KEYS.map(raw);
    const holders = await Promise.all(servers.map((s) => held(s, rawKeys)));
    for (const key of KEYS) {
      const where = servers.filter((_, m) => holders[m].has(raw(key))).map((s) => s.id);
      expect(where.sort()).toEqual(ownersOf(key, 2).sort());
    }
    // Nothing else: two copies of each key, plus the namespace generation on every member.
    const items = await Promise.all(servers.map(async (s) => Number((await s.stats()).curr_items)));
    expect(items.reduce((a, b) => a + b, 0)).toBe(2 * KEYS.length + servers.length);

    const gone = KEYS.slice(0, 50);
    for (const key of gone) expect(await keyv.delete(key)).toBe(true);
    const after = await Promise.all(servers.map((s) => held(s, gone.map(raw))));
    expect(after.map((set) => set.size)).toEqual([0, 0, 0, 0]);
    for (const key of gone) expect(await keyv.get(key)).toBeUndefined();
  });

  it.each([
    [2, 'keeps the hit ratio ≥ 95 %'],
    [1, 'loses the killed member’s keys (the contrast)'],
  ])('killing one of 4 members with replicas: %i %s, callers see no error', async (replicas) => {
    const { store, keyv } = await open({ replicas, failureLimit: 2, retryTimeout: 60_000 });
    const victim = servers[1];
    const itsKeys = KEYS.filter((key) => ownersOf(key, 1)[0] === victim.id);
    expect(itsKeys.length / KEYS.length).toBeGreaterThan(0.15);
    await kill(victim);

    // Never rejects: failures read as misses (or are answered by a replica).
    const hits = await readAll(keyv, KEYS);
    const ratio = hits.filter(Boolean).length / KEYS.length;
    expect(store.stats().ring).not.toContain(victim.id);
    const replicaReads = servers.reduce((sum, s) => sum + memberStats(store, s).replicaReads, 0);
    if (replicas === 2) {
      expect(ratio).toBeGreaterThanOrEqual(0.95);
      // The killed member's reads before its ejection went to its replicas (after it, the replica
      // is the owner).
      expect(replicaReads).toBeGreaterThan(0);
      expect(replicaReads).toBeLessThanOrEqual(itsKeys.length);
    } else {
      expect(ratio).toBeLessThan(0.9);
      expect(hits.filter((hit) => !hit).length).toBe(itsKeys.length);
      expect(replicaReads).toBe(0);
    }
  });

  it('a multi-get falls back to the replicas in one extra round', async () => {
    // The dead member stays on the ring: every multi-get asks it first.
    const { store, keyv } = await open({ replicas: 2, failureLimit: 1_000_000 });
    const victim = servers[2];
    const itsKeys = KEYS.filter((key) => ownersOf(key, 1)[0] === victim.id).slice(0, 150);
    expect(itsKeys.length).toBe(150);
    await kill(victim);
    const errorsBefore = memberStats(store, victim).errors;
    const opsBefore = servers.map((s) => memberStats(store, s).ops);

    const values = await keyv.getMany(itsKeys);
    expect(values).toEqual(itsKeys.map((key) => `value of ${key}`));
    // The dead owner was asked once per batch of 100 keys, not once per key.
    expect(memberStats(store, victim).errors - errorsBefore).toBe(2);
    // Each key asked of exactly one replica, and answered there.
    const others = servers.filter((s) => s !== victim);
    const asked = others.reduce(
      (sum, s) => sum + memberStats(store, s).ops - opsBefore[servers.indexOf(s)],
      0,
    );
    expect(asked).toBe(itsKeys.length);
    expect(others.reduce((sum, s) => sum + memberStats(store, s).replicaReads, 0)).toBe(
      itsKeys.length,
    );
  });
});
