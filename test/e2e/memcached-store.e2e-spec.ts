import Keyv from 'keyv';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ENCODED_KEY_MARKER } from '../../lib/memcached/protocol/key-encoding.js';
import { FixedMembers } from '../../lib/discovery/fixed-members.js';
import { memberId } from '../../lib/discovery/member.js';
import { HashRing } from '../../lib/memcached/ring/hash-ring.js';
import { MemcachedStore } from '../../lib/memcached/store/memcached.store.js';
import type { MemcachedStoreOptions } from '../../lib/memcached/store/memcached.store.js';
import {
  MemcachedReplyError,
  MemcachedValueTooLargeError,
} from '../../lib/errors/memcached.errors.js';
import type { MemcachedProcess } from '../support/memcached.js';
import {
  memcachedAvailable,
  rawGet,
  startMemcached,
  stopAllMemcached,
} from '../support/memcached.js';
import { quietLogger } from '../support/quiet-logger.js';
import { sleep, waitForValue } from '../support/wait-for.js';
import { serviceAvailable } from '../support/services.js';

// This file's loopback range: 127.0.1.x (other files use other ranges).
const run = memcachedAvailable();

describe.runIf(run)('MemcachedStore on real memcached', () => {
  let servers: MemcachedProcess[];
  const stores: MemcachedStore[] = [];

  function members() {
    return servers.map((s) => ({ host: s.host, port: s.port }));
  }

  function newStore(options: Partial<MemcachedStoreOptions> = {}): MemcachedStore {
    const store = new MemcachedStore({
      source: new FixedMembers(members()),
      logger: quietLogger,
      ...options,
    });
    stores.push(store);
    return store;
  }

  async function rawSet(server: MemcachedProcess, key: string, value: string): Promise<void> {
    const reply = await server.command(
      `set ${key} 0 0 ${Buffer.byteLength(value)}\r\n${value}\r\n`,
    );
    expect(reply).toBe('STORED\r\n');
  }

  async function flushAll(): Promise<void> {
    // Only the test flushes its own servers; the store never does.
    await Promise.all(servers.map((s) => s.command('flush_all\r\n')));
  }

  beforeAll(async () => {
    servers = await Promise.all([1, 2, 3].map((i) => startMemcached({ host: `127.0.1.${i}` })));
  });

  // Each test's stores go with it: no connection, timer or generation cache outlives its test.
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.disconnect()));
  });

  afterAll(stopAllMemcached);

  beforeEach(flushAll);

  it('round-trips through Keyv and directly, without prefixing the namespace twice', async () => {
    const store = newStore();
    const keyv = new Keyv({ store, namespace: 'app' });
    expect(await keyv.set('user:1', { name: 'Ada' })).toBe(true);
    expect(await keyv.get('user:1')).toEqual({ name: 'Ada' });
    expect(await keyv.has('user:1')).toBe(true);
    expect(await keyv.delete('user:1')).toBe(true);
    expect(await keyv.get('user:1')).toBeUndefined();
    expect(await keyv.delete('user:1')).toBe(false);

    expect(await store.set('app:direct', 'raw-value')).toBe(true);
    expect(await store.get('app:direct')).toBe('raw-value');

    // Stored as <namespace>:<generation>:<key>, exactly once prefixed.
    // The generation token is on every member, the same everywhere.
    const tokens = await Promise.all(servers.map((s) => rawGet(s, 'app:~gen')));
    const token = tokens[0];
    expect(token).toMatch(/^[0-9a-z]{9}\.[\w-]{8}$/);
    expect(tokens).toEqual(servers.map(() => token));
    const values = await Promise.all(servers.map((s) => rawGet(s, `app:${token}:direct`)));
    expect(values.filter((v) => v === 'raw-value')).toHaveLength(1);
    expect(store.servers()).toEqual(servers.map((s) => s.id).sort());
  });

  it('reads a key that starts with the namespace the same through get and getMany', async () => {
    // Keyv 5 sends `app:app:x` to getMany but `app:x` to get/set for the user key `app:x`.
    const keyv = new Keyv({ store: newStore(), namespace: 'app' });
    expect(await keyv.set('app:x', 'one')).toBe(true);
    expect(await keyv.set('y', 'two')).toBe(true);
    expect(await keyv.get('app:x')).toBe('one');
    expect(await keyv.getMany(['app:x', 'y', 'app:y', 'missing'])).toEqual([
      'one',
      'two',
      'two',
      undefined,
    ]);
  });

  it('works on its own from a host string (discovery of IP literals)', async () => {
    const hosts = servers.map((s) => s.id).join(',');
    const store = new MemcachedStore({ host: hosts, logger: quietLogger });
    stores.push(store);
    await store.ready();
    expect(store.servers()).toEqual(servers.map((s) => s.id).sort());
    const keyv = new Keyv({ store });
    await keyv.set('standalone', 42);
    expect(await keyv.get('standalone')).toBe(42);
  });

  it('reaches a member on an IPv6 literal', async () => {
    let v6: MemcachedProcess | undefined;
    let failure: unknown;
    try {
      v6 = await startMemcached({ host: '::1' });
    } catch (error) {
      failure = error;
    }
    if (!serviceAvailable('memcached on ::1', v6 !== undefined, String(failure))) return;
    try {
      const store = new MemcachedStore({ host: v6!.id, logger: quietLogger });
      stores.push(store);
      await store.set('keyv:v6', 'over-ipv6');
      expect(await store.get('keyv:v6')).toBe('over-ipv6');
      expect(store.servers()).toEqual([v6!.id]);
    } finally {
      await v6!.stop();
    }
  });

  it('keeps the namespace when a member joins or restarts empty (the generation is on every member)', async () => {
    const source = new FixedMembers(members().slice(0, 2));
    // Re-read the generation on every operation: the worst case for a lost token. Without
    // warm-up, which would copy the moved keys and hide which ones a lost token would cost.
    const store = newStore({ source, generationCacheTime: 0, warmupPeriod: 0 });
    const keyv = new Keyv({ store, namespace: 'gen' });
    const keys = Array.from({ length: 300 }, (_, i) => `g${i}`);
    for (const key of keys) expect(await keyv.set(key, key)).toBe(true);
    const token = await rawGet(servers[0], 'gen:~gen');
    expect(token).toBeDefined();
    const ownerIn = (ring: HashRing, key: string) => memberId(ring.get(`gen:${token}:${key}`)!);
    const two = new HashRing(members().slice(0, 2));
    const three = new HashRing(members());
    const hitsOf = async () =>
      (await Promise.all(keys.map((key) => keyv.get(key)))).map((v, i) => v === keys[i]);

    // A third, empty member joins: exactly the keys it now owns miss, every other key still hits.
    source.set(members());
    const joined = await hitsOf();
    keys.forEach((key, i) => expect(joined[i]).toBe(ownerIn(two, key) === ownerIn(three, key)));
    expect(joined.filter(Boolean).length).toBeGreaterThan(keys.length / 2);
    // The token was copied to the new member (by the reloads that traffic starts).
    const copied = await waitForValue(
      'the generation token copied to the third member',
      async () => {
        await keyv.get(keys[0]);
        return rawGet(servers[2], 'gen:~gen');
      },
      (t) => t === token,
      5_000,
    );
    expect(copied).toBe(token);

    // Members restart empty one by one: only the restarted members' keys go.
    const restarted = new Set<string>();
    for (const server of servers) {
      await server.restart();
      restarted.add(server.id);
      const hits = await hitsOf();
      keys.forEach((key, i) =>
        expect(hits[i]).toBe(joined[i] && !restarted.has(ownerIn(three, key))),
      );
    }
  });

  it('never writes outside a generation when the namespace changes during the first load', async () => {
    const store = newStore();
    const keyv = (ns: string) => ({ set: (k: string) => store.set(`${ns}:${k}`, k) });
    store.namespace = 'a';
    const first = keyv('a').set('k');
    store.namespace = 'b';
    const second = keyv('b').set('k');
    expect(await Promise.all([first, second])).toEqual([expect.any(Boolean), true]);
    for (const server of servers) {
      expect(await rawGet(server, 'a:k')).toBeUndefined();
      expect(await rawGet(server, 'k')).toBeUndefined();
      expect(await rawGet(server, 'b:k')).toBeUndefined();
    }
    const token = await rawGet(servers[0], 'b:~gen');
    const stored = await Promise.all(servers.map((s) => rawGet(s, `b:${token}:k`)));
    expect(stored.filter((v) => v === 'k')).toHaveLength(1);
  });

  it('keeps a clear() that members missed: they get the new generation, nothing comes back', async () => {
    const source = new FixedMembers(members());
    const store = newStore({ source, generationCacheTime: 0 });
    const keyv = new Keyv({ store, namespace: 'clr' });
    const keys = Array.from({ length: 60 }, (_, i) => `c${i}`);
    for (const key of keys) expect(await keyv.set(key, key)).toBe(true);
    const before = await rawGet(servers[0], 'clr:~gen');

    // One member is out of the ring during the clear, then back with the old token.
    source.set(members().slice(0, 2));
    await keyv.clear();
    source.set(members());
    expect(await Promise.all(keys.map((k) => keyv.get(k)))).toEqual(keys.map(() => undefined));
    const after = await waitForValue(
      'a new generation on every member',
      async () => {
        await keyv.get(keys[0]);
        return Promise.all(servers.map((s) => rawGet(s, 'clr:~gen')));
      },
      (tokens) => tokens.every((t) => t !== before),
      5_000,
    );
    expect(after[0]).not.toBe(before);
    expect(after).toEqual(servers.map(() => after[0]));

    // No member reachable at all during the clear: the token travels when they are back.
    for (const key of keys) expect(await keyv.set(key, key)).toBe(true);
    source.set([]);
    await keyv.clear();
    source.set(members());
    expect(await Promise.all(keys.map((k) => keyv.get(k)))).toEqual(keys.map(() => undefined));
    // The push happens in the background reloads that traffic starts: keep some going.
    const last = await waitForValue(
      'another new generation on every member',
      async () => {
        await keyv.get(keys[0]);
        return Promise.all(servers.map((s) => rawGet(s, 'clr:~gen')));
      },
      (tokens) => tokens.every((t) => t !== after[0]),
      5_000,
    );
    expect(last[0]).not.toBe(after[0]);
    expect(last).toEqual(servers.map(() => last[0]));
  });

  it('spreads 3,000 keys over 3 members at 20–47 % each (asked of each memcached)', async () => {
    const keyv = new Keyv({ store: newStore(), namespace: 'spread' });
    const entries = Array.from({ length: 3000 }, (_, i) => ({ key: `k${i}`, value: i }));
    const stored = await keyv.setMany(entries);
    expect(stored.every(Boolean)).toBe(true);
    const items = await Promise.all(servers.map(async (s) => Number((await s.stats()).curr_items)));
    // Every member also holds the namespace's generation key. (`curr_items` may still count a
    // few entries of earlier tests that `flush_all` invalidated but memcached has not reclaimed.)
    expect(items.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(3000 + servers.length);
    for (const count of items) {
      expect(count / 3000).toBeGreaterThanOrEqual(0.2);
      expect(count / 3000).toBeLessThanOrEqual(0.47);
    }
  });

  it('keeps keys memcached cannot take safe: they round-trip and inject nothing', async () => {
    await Promise.all(servers.map((s) => rawSet(s, 'canary', 'alive')));
    const store = newStore();
    const keyv = new Keyv({ store });
    const keys = [
      'with space',
      'a\r\nflush_all',
      'b\r\nflush_all\r\n',
      'c\r\nset canary 0 0 4\r\ndead',
      'x'.repeat(1000),
      'Ünïcødé 日本語 🙂',
      '\0\x01\x7f',
      `${ENCODED_KEY_MARKER}marker`,
    ];
    for (const [i, key] of keys.entries())
      expect(await keyv.set(key, `value-${i}`), key).toBe(true);
    for (const [i, key] of keys.entries()) expect(await keyv.get(key), key).toBe(`value-${i}`);
    expect(await keyv.get(['with space', 'x'.repeat(1000), 'nope'])).toEqual([
      'value-0',
      'value-4',
      undefined,
    ]);
    for (const server of servers) expect(await rawGet(server, 'canary')).toBe('alive');
    // Distinct keys stayed distinct.
    expect(new Set(await Promise.all(keys.map((k) => keyv.get(k)))).size).toBe(keys.length);
  });

  it('turns TTLs into memcached expiry correctly', async () => {
    const store = newStore();
    await store.set('keyv:short', 'x', 1500);
    await store.set('keyv:tiny', 'x', 300);
    await store.set('keyv:long', 'x', 40 * 24 * 3600 * 1000);
    expect(await store.get('keyv:short')).toBe('x');
    // 40 days is sent as an absolute time: misread as relative seconds it would expire at once.
    expect(await store.get('keyv:long')).toBe('x');

    const tiny = await waitForValue(
      'keyv:tiny to expire',
      () => store.get('keyv:tiny'),
      (v) => v === undefined,
      5000,
    );
    expect(tiny).toBeUndefined();
    const short = await waitForValue(
      'keyv:short to expire',
      () => store.get('keyv:short'),
      (v) => v === undefined,
      6000,
    );
    expect(short).toBeUndefined();
    expect(await store.get('keyv:long')).toBe('x');
  });

  it('keeps an entry at least its TTL, whatever the server clock second it was written in', async () => {
    const keyv = new Keyv({ store: newStore(), namespace: 'ttl1s' });
    // Ten writes spread over one second, each read back 500 ms later: all still there.
    const reads = Array.from({ length: 10 }, async (_, i) => {
      await sleep(i * 100);
      await keyv.set(`t${i}`, i, 1000);
      await sleep(500);
      return keyv.get(`t${i}`);
    });
    expect(await Promise.all(reads)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    // And has() honours the exact expiry (Keyv checks it; the store keeps no has() of its own).
    await keyv.set('e', 'x', 200);
    const gone = await waitForValue(
      'the key to expire',
      () => keyv.has('e'),
      (present) => !present,
      3_000,
    );
    expect(gone).toBe(false);
    expect(await keyv.get('e')).toBeUndefined();
  });

  it('stays usable when a members listener throws', async () => {
    const source = new FixedMembers([]);
    const store = newStore({ source });
    store.on('members', () => {
      throw new Error('listener bug');
    });
    source.set(members());
    await store.ready();
    expect(await store.set('keyv:after-bug', 'ok')).toBe(true);
    expect(await store.get('keyv:after-bug')).toBe('ok');
  });

  it('splits multi-key operations per member and merges them in input order', async () => {
    const store = newStore();
    const keys = Array.from({ length: 60 }, (_, i) => `keyv:multi-${i}`);
    const stored = await store.setMany(keys.map((key, i) => ({ key, value: `v${i}` })));
    expect(stored).toEqual(keys.map(() => true));
    const perMember = await Promise.all(
      servers.map(async (s) => Number((await s.stats()).curr_items)),
    );
    expect(perMember.filter((n) => n > 1).length).toBe(3);

    const asked = keys.flatMap((key, i) => (i % 2 === 0 ? [key, `keyv:absent-${i}`] : [key]));
    const values = await store.getMany(asked);
    expect(values).toEqual(
      asked.map((key) => (key.includes('absent') ? undefined : `v${keys.indexOf(key)}`)),
    );

    expect(await store.deleteMany(keys.slice(0, 30))).toBe(true);
    expect(await store.deleteMany(keys.slice(0, 30))).toBe(false);
    const after = await store.getMany(keys);
    expect(after.slice(0, 30).every((v) => v === undefined)).toBe(true);
    expect(after.slice(30)).toEqual(keys.slice(30).map((_, i) => `v${i + 30}`));
    expect(await store.getMany([])).toEqual([]);

    const keyv = new Keyv({ store, namespace: 'keyv' });
    await keyv.setMany([
      { key: 'a', value: 1 },
      { key: 'b', value: 2 },
    ]);
    expect(await keyv.get(['b', 'zz', 'a'])).toEqual([2, undefined, 1]);
  });

  it('fails an oversized value cleanly and keeps the connection healthy', async () => {
    const source = new FixedMembers(members());
    const store = newStore({ source });
    const errors: Error[] = [];
    store.on('error', (error: Error) => errors.push(error));
    const big = 'x'.repeat(2 * 1024 * 1024);
    // A refused value also removes the previous one, as memcached does for one it refuses.
    expect(await store.set('keyv:big', 'previous')).toBe(true);
    expect(await store.set('keyv:big', big)).toBe(false);
    expect(errors.at(-1)).toBeInstanceOf(MemcachedValueTooLargeError);
    expect(await store.get('keyv:big')).toBeUndefined();
    expect(await store.setMany([{ key: 'keyv:big2', value: 'previous' }])).toEqual([true]);
    expect(
      await store.setMany([
        { key: 'keyv:big2', value: big },
        { key: 'keyv:fine', value: 'ok' },
      ]),
    ).toEqual([false, true]);
    expect(await store.getMany(['keyv:big2', 'keyv:fine'])).toEqual([undefined, 'ok']);

    // Allowed by maxValueSize but refused by memcached (1 MB item limit): still a clean false.
    const lenient = newStore({ source, maxValueSize: 4 * 1024 * 1024 });
    const lenientErrors: Error[] = [];
    lenient.on('error', (error: Error) => lenientErrors.push(error));
    expect(await lenient.set('keyv:big', big)).toBe(false);
    expect(lenientErrors[0]).toBeInstanceOf(MemcachedReplyError);
    expect(lenientErrors[0].message).toMatch(/too large/);
    // Same member, same connection: the next commands work.
    expect(await lenient.set('keyv:big', 'small now')).toBe(true);
    expect(await lenient.get('keyv:big')).toBe('small now');
    expect(
      lenient.stats().members.every((m) => m.failures === 0 && m.ejectedUntil === undefined),
    ).toBe(true);
    expect(source.refreshRequests).toBe(0);
  });

  it('clear() empties only its own namespace', async () => {
    await rawSet(servers[0], 'otherapp:session', 'keep-me');
    const one = new Keyv({ store: newStore(), namespace: 'one' });
    const two = new Keyv({ store: newStore(), namespace: 'two' });
    // Another process working on namespace "one".
    const oneElsewhere = new Keyv({ store: newStore(), namespace: 'one' });
    await one.set('a', 1);
    await one.set('b', 2);
    await two.set('a', 'two-a');
    expect(await oneElsewhere.get('a')).toBe(1);

    await one.clear();
    expect(await one.get('a')).toBeUndefined();
    expect(await one.get('b')).toBeUndefined();
    expect(await two.get('a')).toBe('two-a');
    expect(await rawGet(servers[0], 'otherapp:session')).toBe('keep-me');
    // The other process sees the clear once its cached generation expires (1 s by default).
    const seen = await waitForValue(
      'the clear seen by the other store',
      () => oneElsewhere.get('a'),
      (v) => v === undefined,
      3000,
    );
    expect(seen).toBeUndefined();
    // Writing after the clear works, and both processes agree.
    await one.set('a', 'new');
    expect(await oneElsewhere.get('a')).toBe('new');
  });

  it('applies member changes as a diff: surviving connections stay, removed ones close', async () => {
    const source = new FixedMembers(members().slice(0, 2));
    const store = newStore({ source });
    await store.ready();
    const changes: Array<{ added: number; removed: number }> = [];
    store.on('members', (_list: unknown, diff: { added: unknown[]; removed: unknown[] }) =>
      changes.push({ added: diff.added.length, removed: diff.removed.length }),
    );
    const keys = Array.from({ length: 60 }, (_, i) => `keyv:diff-${i}`);
    await store.setMany(keys.map((key) => ({ key, value: 'v' })));
    const connections = async (s: MemcachedProcess) => {
      const stats = await s.stats();
      return { total: Number(stats.total_connections), current: Number(stats.curr_connections) };
    };
    const before = await Promise.all(servers.map(connections));

    source.set(members());
    expect(store.servers()).toEqual(servers.map((s) => s.id).sort());
    await store.setMany(keys.map((key) => ({ key, value: 'w' })));
    const after = await Promise.all(servers.map(connections));
    // Only our own stats connection is new on the surviving members; the new one got traffic.
    expect(after[0].total - before[0].total).toBe(1);
    expect(after[1].total - before[1].total).toBe(1);
    expect(after[2].total - before[2].total).toBeGreaterThan(1);
    expect(Number((await servers[2].stats()).curr_items)).toBeGreaterThan(0);

    source.set([members()[0], members()[2]]);
    expect(store.servers()).toEqual([servers[0].id, servers[2].id].sort());
    const dropped = await waitForValue(
      'the removed member to lose its connection',
      () => connections(servers[1]),
      (c) => c.current < after[1].current,
      2000,
    );
    expect(dropped.current).toBeLessThan(after[1].current);
    expect(changes).toEqual([
      { added: 1, removed: 0 },
      { added: 0, removed: 1 },
    ]);
  });

  it('disconnect() leaves no socket or timer behind', async () => {
    const count = () => {
      const info = process.getActiveResourcesInfo();
      return {
        sockets: info.filter((r) => r === 'TCPSocketWrap').length,
        timers: info.filter((r) => r === 'Timeout').length,
      };
    };
    // Let sockets the previous test's stores closed finish closing first.
    await sleep(300);
    const before = count();
    const store = new MemcachedStore({
      host: servers.map((s) => s.id).join(','),
      logger: quietLogger,
      refreshInterval: 60_000,
    });
    const keyv = new Keyv({ store });
    await Promise.all(Array.from({ length: 30 }, (_, i) => keyv.set(`h${i}`, i)));
    expect(count().sockets).toBeGreaterThan(before.sockets);
    await store.disconnect();
    const after = await waitForValue(
      'the sockets and timers released',
      async () => count(),
      (c) => c.sockets <= before.sockets && c.timers <= before.timers,
      2000,
    );
    expect(after.sockets).toBeLessThanOrEqual(before.sockets);
    expect(after.timers).toBeLessThanOrEqual(before.timers);
    // And it stays quiet: operations after disconnect are misses, not crashes.
    expect(await keyv.get('h1')).toBeUndefined();
  });
});
