import Keyv from 'keyv';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { memberId } from '../../lib/discovery/member.js';
import type { MemcachedError } from '../../lib/errors/memcached.errors.js';
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
import { sleep, waitFor } from '../support/wait-for.js';
import { readAll } from '../support/keyv-reads.js';
import { scaled } from '../support/timing.js';

// This file's loopback range: 127.0.13.x. One port for every member, as a headless Service gives.
const NAME = 'memcached.warmup.svc.cluster.local';
const KEYS = Array.from({ length: 1_200 }, (_, i) => `item:${i}`);
const TTL = 300_000;

/** Remaining TTL in seconds of each raw key (memcached's meta `mg <key> t`); undefined: missing. */
async function remainingTtls(
  server: MemcachedProcess,
  keys: readonly string[],
): Promise<Array<number | undefined>> {
  const text = keys.map((key) => `mg ${key} t\r\n`).join('');
  const reply = await server.command(text, (r) => r.split('\r\n').length > keys.length);
  return reply
    .split('\r\n')
    .slice(0, keys.length)
    .map((line) => {
      const match = /^HD t(-?\d+)/.exec(line);
      return match ? Number(match[1]) : undefined;
    });
}

describe.runIf(memcachedAvailable())(
  'warm-up after a membership change (real DNS and members)',
  () => {
    let dns: TestDnsServer;
    let port: number;
    let servers: MemcachedProcess[];
    let stores: MemcachedStore[] = [];
    let token: string;

    const members = (list: readonly MemcachedProcess[]) =>
      list.map((s) => ({ host: s.host, port: s.port }));
    const raw = (key: string) => `keyv:${token}:${key}`;
    const ownerIn = (list: readonly MemcachedProcess[], key: string) =>
      memberId(new HashRing(members(list)).get(raw(key))!);
    const memberStats = (store: MemcachedStore, server: MemcachedProcess) =>
      store.stats().members.find((m) => m.member === server.id)!;

    async function open(options: Partial<MemcachedStoreOptions>) {
      const store = new MemcachedStore({
        host: NAME,
        port,
        dnsServers: [dns.address],
        // Membership changes only when the test calls refresh(): no timing in the way.
        refreshInterval: 0,
        // Generous for the live members; a test that hangs one passes its own.
        connectTimeout: scaled(1_000),
        commandTimeout: scaled(1_000),
        // No background generation reloads: every command a member sees is one the test caused.
        generationCacheTime: 600_000,
        logger: quietLogger,
        ...options,
      });
      stores.push(store);
      await store.ready();
      const keyv = new Keyv({ store });
      return { store, keyv };
    }

    async function fill(keyv: Keyv, ttl: (i: number) => number = () => TTL) {
      for (let i = 0; i < KEYS.length; i += 300) {
        const entries = KEYS.slice(i, i + 300).map((key, j) => ({
          key,
          value: `value of ${key}`,
          ttl: ttl(i + j),
        }));
        expect(await keyv.setMany(entries)).toEqual(entries.map(() => true));
      }
      token = (await rawGet(servers[0], 'keyv:~gen'))!;
      expect(token).toMatch(/^[0-9a-z]{9}\./);
    }

    async function scaleTo(store: MemcachedStore, list: readonly MemcachedProcess[]) {
      dns.setA(
        NAME,
        list.map((s) => s.host),
      );
      await store.refresh();
      expect(store.servers()).toEqual(list.map((s) => s.id).sort());
    }

    beforeAll(async () => {
      dns = await startDnsServer();
      port = await freePort('127.0.13.1');
      servers = await Promise.all(
        [1, 2, 3, 4].map((i) => startMemcached({ host: `127.0.13.${i}`, port })),
      );
    });

    beforeEach(async () => {
      await Promise.all(servers.map((s) => s.command('flush_all\r\n')));
      dns.setA(
        NAME,
        servers.slice(0, 3).map((s) => s.host),
      );
    });

    afterEach(async () => {
      for (const server of servers) server.thaw();
      await Promise.all(stores.map((s) => s.disconnect()));
      stores = [];
    });

    afterAll(async () => {
      await dns?.close();
      await stopAllMemcached();
    });

    it.each([
      ['on', 30_000],
      ['off', 0],
    ])(
      'scale-up 3→4 with warm-up %s: hit ratio and where the values end up',
      async (mode, period) => {
        const { store, keyv } = await open({ warmupPeriod: period });
        await fill(keyv);
        const three = servers.slice(0, 3);
        await scaleTo(store, servers);
        const fourth = servers[3];
        const moved = KEYS.filter((key) => ownerIn(servers, key) === fourth.id);
        // Every moved key went to the new member, from one of the three.
        expect(moved.every((key) => ownerIn(three, key) !== fourth.id)).toBe(true);
        expect(moved.length / KEYS.length).toBeGreaterThan(0.15);

        const hits = await readAll(keyv, KEYS);
        const ratio = hits.filter(Boolean).length / KEYS.length;
        if (mode === 'on') {
          expect(ratio).toBeGreaterThanOrEqual(0.95);
          // The moved values are copied to their new owner (in the background, after the reads).
          await waitFor(
            'the copies on the new member',
            async () => (await rawGetMany(fourth, moved.map(raw))).size === moved.length,
            3_000,
          );
          const copied = await rawGetMany(fourth, moved.map(raw));
          for (const key of moved)
            expect(JSON.parse(copied.get(raw(key))!).value).toBe(`value of ${key}`);
          expect(memberStats(store, fourth).warmupCopies).toBe(moved.length);
          // Read again: every moved key now hits at its new owner, no previous owner asked.
          const before = servers.slice(0, 3).map((s) => memberStats(store, s).ops);
          expect((await readAll(keyv, moved)).every(Boolean)).toBe(true);
          const owner = memberStats(store, fourth);
          expect(owner.hits).toBe(moved.length);
          expect(servers.slice(0, 3).map((s) => memberStats(store, s).ops)).toEqual(before);
        } else {
          // Without warm-up every moved key is a miss: the contrast that shows the test can fail.
          expect(ratio).toBeLessThanOrEqual(1 - moved.length / KEYS.length + 0.001);
          expect(ratio).toBeLessThan(0.9);
          // None copied (flush_all leaves curr_items counting earlier tests' items: ask for ours).
          expect((await rawGetMany(fourth, moved.map(raw))).size).toBe(0);
          expect(memberStats(store, fourth).warmupCopies).toBe(0);
        }
      },
    );

    it.each([
      ['on', 30_000],
      ['off', 0],
    ])(
      'a pod restarting empty (out of DNS, back empty) with warm-up %s: its keys come from where they were meanwhile',
      async (mode, period) => {
        dns.setA(
          NAME,
          servers.map((s) => s.host),
        );
        const { store, keyv } = await open({ warmupPeriod: period, retryTimeout: 60_000 });
        await fill(keyv);
        const restarting = servers[1];
        const others = servers.filter((s) => s !== restarting);
        const itsKeys = KEYS.filter((key) => ownerIn(servers, key) === restarting.id);
        expect(itsKeys.length / KEYS.length).toBeGreaterThan(0.15);

        // Drained: out of DNS. The application reads through: misses are fetched and written back.
        await scaleTo(store, others);
        const during = await readAll(keyv, KEYS);
        const missed = KEYS.filter((_, i) => !during[i]);
        expect(missed.sort()).toEqual([...itsKeys].sort());
        await keyv.setMany(missed.map((key) => ({ key, value: `value of ${key}`, ttl: TTL })));

        // Back, empty: on the ring as soon as DNS names it again (no probe first).
        await restarting.restart();
        await scaleTo(store, servers);
        expect(store.stats().ring).toContain(restarting.id);

        const hits = await readAll(keyv, KEYS);
        const ratio = hits.filter(Boolean).length / KEYS.length;
        if (mode === 'on') {
          expect(ratio).toBeGreaterThanOrEqual(0.95);
          await waitFor(
            'the copies on the restarted member',
            () => memberStats(store, restarting).warmupCopies === itsKeys.length,
            3_000,
          );
          expect((await rawGetMany(restarting, itsKeys.map(raw))).size).toBe(itsKeys.length);
        } else {
          expect(ratio).toBeLessThan(0.9);
          expect(hits.filter((hit) => !hit).length).toBe(itsKeys.length);
        }
      },
    );

    it('never asks a previous owner known dead; callers get misses, not errors', async () => {
      const { store, keyv } = await open({
        warmupPeriod: 30_000,
        failureLimit: 2,
        // The hung member's two reads take this long; the live members' reads must never.
        commandTimeout: scaled(1_000),
        retryTimeout: 60_000,
      });
      await fill(keyv);
      const three = servers.slice(0, 3);
      await scaleTo(store, servers);
      const dead = servers[0];
      const kept = KEYS.filter((key) => ownerIn(servers, key) === dead.id);
      const movedAway = KEYS.filter(
        (key) => ownerIn(three, key) === dead.id && ownerIn(servers, key) !== dead.id,
      );
      expect(kept.length).toBeGreaterThan(10);
      expect(movedAway.length).toBeGreaterThan(10);
      const getsBefore = Number((await dead.stats()).cmd_get);
      const opsBefore = memberStats(store, dead).ops;

      // Hung (SIGSTOP): two reads of keys it still owns time out and eject it.
      await dead.freeze();
      const ejected = new Promise<string>((resolve) => store.once('eject', resolve));
      expect(await Promise.all(kept.slice(0, 2).map((key) => keyv.get(key)))).toEqual([
        undefined,
        undefined,
      ]);
      expect(await ejected).toBe(dead.id);
      const sent = memberStats(store, dead).ops - opsBefore;
      expect(sent).toBe(2);

      // It was the previous owner of all these keys: none of the reads may go to it.
      const errors: MemcachedError[] = [];
      store.on('error', (error: MemcachedError) => errors.push(error));
      const keys = [...kept.slice(2), ...movedAway];
      const hits = await readAll(keyv, keys);
      expect(hits.filter(Boolean)).toEqual([]);
      expect(errors).toEqual([]);
      expect(memberStats(store, dead).ops - opsBefore).toBe(sent);

      // Resumed, it handles what was queued in its sockets: only the two reads that timed out.
      dead.thaw();
      await sleep(300);
      const getsAfter = Number((await dead.stats()).cmd_get);
      expect(getsAfter - getsBefore).toBeLessThanOrEqual(sent);
    });

    it('copies with a remaining TTL never longer than the original', async () => {
      const { store, keyv } = await open({ warmupPeriod: 30_000 });
      // TTLs from 20.5 s to about 32 s, with fractions of a second.
      await fill(keyv, (i) => 20_500 + (i % 10) * 1_337);
      await sleep(1_100);
      const three = servers.slice(0, 3);
      await scaleTo(store, servers);
      const fourth = servers[3];
      const moved = KEYS.filter((key) => ownerIn(servers, key) === fourth.id).slice(0, 120);
      expect((await readAll(keyv, moved)).every(Boolean)).toBe(true);
      await waitFor(
        'the copies',
        () => memberStats(store, fourth).warmupCopies === moved.length,
        3_000,
      );
      // The copy's TTL is read first: the original's can only have gone down since.
      const copies = await remainingTtls(fourth, moved.map(raw));
      const originals: Array<number | undefined> = [];
      for (const server of three) {
        const mine = moved.filter((key) => ownerIn(three, key) === server.id);
        const ttls = await remainingTtls(server, mine.map(raw));
        mine.forEach((key, j) => (originals[moved.indexOf(key)] = ttls[j]));
      }
      moved.forEach((key, i) => {
        expect(copies[i], key).toBeGreaterThanOrEqual(1);
        expect(copies[i], key).toBeLessThanOrEqual(originals[i]!);
        // Carried over, not shortened to nothing: within a few seconds of the original (whole
        // seconds rounded at the set and at the copy, and each member's one-second clock, which
        // a busy machine was seen to put 4 s apart).
        expect(copies[i], key).toBeGreaterThanOrEqual(originals[i]! - 5);
      });
    });

    it('never overwrites a value written at the new owner while the copy was on its way', async () => {
      const { store, keyv } = await open({ warmupPeriod: 30_000, commandTimeout: 3_000 });
      await fill(keyv);
      const three = servers.slice(0, 3);
      await scaleTo(store, servers);
      const fourth = servers[3];
      const key = KEYS.find((k) => ownerIn(servers, k) === fourth.id)!;
      const previous = three.find((s) => s.id === ownerIn(three, key))!;
      const opsBefore = memberStats(store, previous).ops;

      // The previous owner hangs while the warm-up read waits on it; meanwhile a newer value is
      // written at the new owner (by another process, say).
      await previous.freeze();
      const read = keyv.get(key);
      await waitFor('the warm-up read', () => memberStats(store, previous).ops > opsBefore, 2_000);
      const newer = JSON.stringify({ value: 'newer', expires: null });
      expect(await fourth.command(`set ${raw(key)} 0 0 ${newer.length}\r\n${newer}\r\n`)).toBe(
        'STORED\r\n',
      );
      previous.thaw();
      // The read started before the write: it answers what the previous owner held.
      expect(await read).toBe(`value of ${key}`);
      // Control: another moved key, read after it, is copied; by then the first key's copy
      // attempt, made first, has had its answer too.
      const control = KEYS.find((k) => k !== key && ownerIn(servers, k) === fourth.id)!;
      expect(await keyv.get(control)).toBe(`value of ${control}`);
      await waitFor(
        'the control key copied',
        () => memberStats(store, fourth).warmupCopies >= 1,
        3_000,
      );
      expect((await rawGetMany(fourth, [raw(key)])).get(raw(key))).toBe(newer);
      expect(memberStats(store, fourth).warmupCopies).toBe(1);
      expect(await keyv.get(key)).toBe('newer');
    });

    it('a set or delete during warm-up clears the previous owner: nothing old comes back', async () => {
      const { store, keyv } = await open({ warmupPeriod: 30_000 });
      await fill(keyv);
      const three = servers.slice(0, 3);
      await scaleTo(store, servers);
      const fourth = servers[3];
      const [written, deleted] = KEYS.filter((k) => ownerIn(servers, k) === fourth.id);
      const previousOf = (key: string) => three.find((s) => s.id === ownerIn(three, key))!;
      const heldBy = async (server: MemcachedProcess, key: string) =>
        (await rawGetMany(server, [raw(key)])).has(raw(key));
      expect(await heldBy(previousOf(written), written)).toBe(true);
      expect(await heldBy(previousOf(deleted), deleted)).toBe(true);

      expect(await keyv.set(written, 'fresh', TTL)).toBe(true);
      // It existed (at its previous owner), so the delete says so.
      expect(await keyv.delete(deleted)).toBe(true);
      await waitFor(
        'the previous owners to drop their copies',
        async () =>
          !(await heldBy(previousOf(written), written)) &&
          !(await heldBy(previousOf(deleted), deleted)),
        2_000,
      );
      expect(await keyv.get(written)).toBe('fresh');
      expect(await keyv.get(deleted)).toBeUndefined();
      expect(await heldBy(fourth, deleted)).toBe(false);
    });
  },
);
