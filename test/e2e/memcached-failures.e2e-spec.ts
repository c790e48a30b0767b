import type { EventEmitter } from 'node:events';
import Keyv from 'keyv';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MemcachedError } from '../../lib/errors/memcached.errors.js';
import { MemcachedMemberError, MemcachedReplyError } from '../../lib/errors/memcached.errors.js';
import { FixedMembers } from '../../lib/discovery/fixed-members.js';
import { MemcachedPool } from '../../lib/memcached/pool/memcached-pool.js';
import { MemcachedStore } from '../../lib/memcached/store/memcached.store.js';
import type { MemcachedProcess } from '../support/memcached.js';
import {
  freePort,
  memcachedAvailable,
  rawGet,
  startMemcached,
  stopAllMemcached,
} from '../support/memcached.js';
import { quietLogger } from '../support/quiet-logger.js';
import { scaled } from '../support/timing.js';
import { sleep, waitFor } from '../support/wait-for.js';

// This file's loopback range: 127.0.2.x.
const run = memcachedAvailable();
// Generous for the live members (the tests count their errors as none); a hung member still
// takes exactly this long to fail.
const COMMAND_TIMEOUT = scaled(1_000);
const RETRY_TIMEOUT = scaled(2_000);

function within<T>(promise: Promise<T>, unscaledMs: number, what: string): Promise<T> {
  const ms = scaled(unscaledMs);
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Next `name` event's arguments (events.once would reject on the store's `error` events). */
function nextEvent(emitter: EventEmitter, name: string): Promise<unknown[]> {
  return new Promise((resolve) => emitter.once(name, (...args: unknown[]) => resolve(args)));
}

describe.runIf(run)('memcached failures', () => {
  let servers: MemcachedProcess[];
  const cleanups: Array<() => Promise<void> | void> = [];

  function newStore(source: FixedMembers, logger = quietLogger): MemcachedStore {
    const store = new MemcachedStore({
      source,
      logger,
      failureLimit: 2,
      retryTimeout: RETRY_TIMEOUT,
      commandTimeout: COMMAND_TIMEOUT,
      connectTimeout: COMMAND_TIMEOUT,
    });
    cleanups.push(() => store.disconnect());
    return store;
  }

  /** Keys (of `keys`) stored on each server, and which server holds the namespace generation. */
  async function layout(namespace: string, keys: string[]) {
    const tokens = await Promise.all(servers.map((s) => rawGet(s, `${namespace}:~gen`)));
    const genHolder = tokens.findIndex((t) => t !== undefined);
    const token = tokens[genHolder]!;
    const owned = await Promise.all(
      servers.map(async (s) => {
        const mine: string[] = [];
        for (const key of keys) {
          if ((await rawGet(s, `${namespace}:${token}:${key}`)) !== undefined) mine.push(key);
        }
        return mine;
      }),
    );
    return { genHolder, owned };
  }

  // Fresh members for each test: tests kill, freeze and restart them.
  beforeEach(async () => {
    servers = await Promise.all([1, 2, 3].map((i) => startMemcached({ host: `127.0.2.${i}` })));
  });

  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
    await stopAllMemcached();
  });

  afterAll(stopAllMemcached);

  it('survives a member killed under load, ejects it, and re-admits it once restarted', async () => {
    const source = new FixedMembers(servers.map((s) => ({ host: s.host, port: s.port })));
    let errorLines = 0;
    const store = newStore(source, { ...quietLogger, error: () => void errorLines++ });
    const keyv = new Keyv({ store, namespace: 'load' });
    const errors: MemcachedError[] = [];
    let errorEvents = 0;
    keyv.on('error', (error: MemcachedError) => {
      errorEvents++;
      if (errors.length < 1000) errors.push(error);
    });
    const keys = Array.from({ length: 300 }, (_, i) => `item-${i}`);
    expect((await keyv.setMany(keys.map((key) => ({ key, value: key })))).every(Boolean)).toBe(
      true,
    );
    const before = await layout('load', keys);
    // Kill a member that does not hold the generation key, so the namespace stays as it is.
    const victimIndex = before.genHolder === 0 ? 1 : 0;
    const victim = servers[victimIndex];
    const victimKeys = before.owned[victimIndex];
    expect(victimKeys.length).toBeGreaterThan(30);

    const ejected = nextEvent(store, 'eject');
    let rejected = 0;
    let operations = 0;
    const deadline = Date.now() + 3000;
    const worker = async (w: number) => {
      for (let i = 0; i < 5000 && Date.now() < deadline; i++) {
        const key = keys[(w * 31 + i * 7) % keys.length];
        try {
          if (i % 4 === 0) await keyv.set(key, key);
          else await keyv.get(key);
        } catch {
          rejected++;
        }
        operations++;
      }
    };
    const load = Promise.all(Array.from({ length: 64 }, (_, w) => worker(w)));
    await sleep(500);
    victim.kill('SIGKILL');
    await load;

    expect(rejected).toBe(0);
    expect(operations).toBeGreaterThan(1000);
    const [member, error] = await within(ejected, 2000, 'ejection');
    expect(member).toBe(victim.id);
    expect(error).toBeInstanceOf(MemcachedMemberError);
    expect(errors.some((e) => e instanceof MemcachedMemberError && e.member === victim.id)).toBe(
      true,
    );
    expect(source.refreshRequests).toBeGreaterThan(0);
    expect(source.lastRefreshReason).toContain(victim.id);
    // Every failure is an event; the log gets a bounded number of lines.
    expect(errorEvents).toBeGreaterThan(errorLines);
    expect(errorLines).toBeGreaterThan(0);
    expect(errorLines).toBeLessThanOrEqual(3);
    expect(store.stats().ring).not.toContain(victim.id);
    expect(store.stats().members.find((m) => m.member === victim.id)?.ejectedUntil).toBeGreaterThan(
      0,
    );

    // Its keys now live on the other members (the victim is dead, so it cannot be serving them).
    for (const key of victimKeys) {
      expect(await keyv.set(key, `moved-${key}`)).toBe(true);
      expect(await keyv.get(key)).toBe(`moved-${key}`);
    }

    // Still dead when retryTimeout is up: the probe fails and it stays off the ring for another
    // retryTimeout (without the probe it would be back on the ring, blindly).
    const victimStats = () => store.stats().members.find((m) => m.member === victim.id);
    const firstUntil = victimStats()?.ejectedUntil ?? 0;
    await waitFor(
      'the failed probe to extend the ejection',
      () => (victimStats()?.ejectedUntil ?? 0) > firstUntil,
      RETRY_TIMEOUT + 3_000,
    );
    expect(store.stats().ring).not.toContain(victim.id);

    // Restarted: the next probe succeeds and it is back on the ring, holding its keys again.
    await victim.restart();
    const readmitted = await within(
      nextEvent(store, 'readmit'),
      RETRY_TIMEOUT + 2000,
      're-admission',
    );
    expect(readmitted[0]).toBe(victim.id);
    expect(store.stats().ring).toContain(victim.id);
    for (const key of victimKeys) expect(await keyv.set(key, `back-${key}`)).toBe(true);
    // Plus, once the store re-reads its generation, the token copied to the restarted member.
    expect([victimKeys.length, victimKeys.length + 1]).toContain(
      Number((await victim.stats()).curr_items),
    );
    expect(await keyv.get(victimKeys[0])).toBe(`back-${victimKeys[0]}`);
    expect(store.stats().members.find((m) => m.member === victim.id)?.failures).toBe(0);
  });

  it('times out on a hung member within commandTimeout and ejects it', async () => {
    const source = new FixedMembers(servers.map((s) => ({ host: s.host, port: s.port })));
    const store = newStore(source);
    const keyv = new Keyv({ store, namespace: 'hung' });
    const keys = Array.from({ length: 60 }, (_, i) => `h-${i}`);
    await keyv.setMany(keys.map((key) => ({ key, value: key })));
    const { genHolder, owned } = await layout('hung', keys);
    const index = genHolder === 2 ? 1 : 2;
    const hung = servers[index];
    const hungKey = owned[index][0];
    expect(hungKey).toBeDefined();

    const ejected = nextEvent(store, 'eject');
    cleanups.push(() => hung.thaw());
    await hung.freeze();
    const started = Date.now();
    expect(await keyv.get(hungKey)).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(COMMAND_TIMEOUT + 1500);
    for (let i = 0; i < 5 && store.stats().ring.includes(hung.id); i++) await keyv.get(hungKey);
    const [member] = await within(ejected, 5000, 'ejection of the hung member');
    expect(member).toBe(hung.id);
    expect(store.stats().ring).not.toContain(hung.id);
    // Its keys are served elsewhere meanwhile.
    expect(await keyv.set(hungKey, 'elsewhere')).toBe(true);
    expect(await keyv.get(hungKey)).toBe('elsewhere');
    expect(source.refreshRequests).toBeGreaterThan(0);
  });

  it('asks for a refresh on connection errors, never on NOT_FOUND / SERVER_ERROR replies', async () => {
    const refreshes: string[] = [];
    const errors: MemcachedError[] = [];
    const pool = new MemcachedPool({
      connectTimeout: 500,
      commandTimeout: COMMAND_TIMEOUT,
      maxConnections: 1,
      failureLimit: 2,
      retryTimeout: RETRY_TIMEOUT,
      // Above memcached's 1 MB item limit: the server, not the pool, refuses the big value.
      maxValueSize: 4 * 1024 * 1024,
    });
    pool.on('failure', (error) => errors.push(error));
    pool.on('memberFailure', (member) => refreshes.push(member));
    cleanups.push(() => pool.close());
    pool.setMembers([{ host: servers[0].host, port: servers[0].port }]);
    expect(await pool.delete('nf-absent')).toBe(false); // NOT_FOUND
    expect(await pool.get('nf-absent')).toBeUndefined();
    expect(errors).toEqual([]);
    // Over the server's item limit: SERVER_ERROR object too large for cache.
    expect(await pool.set('nf-big', 'x'.repeat(2 * 1024 * 1024), 0)).toBe(false);
    expect(errors.map((e) => e.constructor)).toEqual([MemcachedReplyError]);
    expect(await pool.set('nf-key', 'v', 0)).toBe(true);
    expect(refreshes).toEqual([]);
    errors.length = 0;

    // Nothing listens on this port: connection refused.
    const dead = { host: '127.0.2.9', port: await freePort('127.0.2.9') };
    pool.setMembers([dead]);
    expect(await pool.get('anything')).toBeUndefined();
    expect(await pool.set('anything', 'v', 0)).toBe(false);
    // The get and the set (and the clearing of this process's earlier keys, which the new
    // owner might have held older): each failure asks for a refresh, naming the member.
    expect(refreshes.length).toBeGreaterThanOrEqual(2);
    expect(new Set(refreshes)).toEqual(new Set([`127.0.2.9:${dead.port}`]));
    expect(errors[0]).toBeInstanceOf(MemcachedMemberError);
    expect(errors[0].message).toContain('ECONNREFUSED');

    // Through the store: the same, to the member source.
    const source = new FixedMembers([dead]);
    const store = newStore(source);
    expect(await store.get('keyv:x')).toBeUndefined();
    expect(await store.set('keyv:x', 'v')).toBe(false);
    expect(source.refreshRequests).toBeGreaterThan(0);
    // All members ejected: operations are quick misses, still no throw.
    expect(await store.get('keyv:x')).toBeUndefined();
  });

  it.each(['killed', 'hung'] as const)(
    'keeps a %s member off the ring past retryTimeout; no user operation goes to it',
    async (how) => {
      const down = await startMemcached({ host: '127.0.2.4' });
      cleanups.push(() => down.stop());
      const retryTimeout = scaled(500);
      const errors: MemcachedError[] = [];
      const events: string[] = [];
      const pool = new MemcachedPool({
        connectTimeout: COMMAND_TIMEOUT,
        commandTimeout: COMMAND_TIMEOUT,
        maxConnections: 2,
        failureLimit: 2,
        retryTimeout,
      });
      pool.on('failure', (error) => errors.push(error));
      cleanups.push(() => pool.close());
      pool.on('eject', (member: string) => events.push(`eject ${member}`));
      pool.on('readmit', (member: string) => events.push(`readmit ${member}`));
      const live = servers[0];
      pool.setMembers([live, down].map((s) => ({ host: s.host, port: s.port })));
      const downStats = () => pool.stats().members.find((m) => m.member === down.id)!;
      const keys = Array.from({ length: 200 }, (_, i) => `sd-${how}-${i}`);
      const stored = await pool.setMany(keys.map((key) => ({ key, value: key, exptime: 0 })));
      expect(stored.every(Boolean)).toBe(true);
      expect(downStats().ops).toBeGreaterThan(0);

      if (how === 'killed') down.kill('SIGKILL');
      else await down.freeze();
      for (let i = 0; i < 20 && pool.stats().ring.includes(down.id); i++) await pool.getMany(keys);
      expect(events).toEqual([`eject ${down.id}`]);
      const ejectedUntil = downStats().ejectedUntil!;
      const opsAtEjection = downStats().ops;
      errors.length = 0;

      // Six retryTimeouts of traffic: every key is served by the live member alone.
      const until = Date.now() + 6 * retryTimeout;
      let rounds = 0;
      // Bounded by time; the count bound is only a safeguard (a round takes well under 1 ms).
      while (Date.now() < until && rounds < 1_000_000) {
        await pool.getMany(keys);
        expect(await pool.set(keys[rounds % keys.length], 'v', 0)).toBe(true);
        expect(pool.stats().ring).toEqual([live.id]);
        rounds++;
      }
      expect(rounds).toBeGreaterThan(5);
      expect(events).toEqual([`eject ${down.id}`]);
      expect(downStats().ops).toBe(opsAtEjection);
      expect(errors).toEqual([]);
      // It was probed (and failed) in the background: its ejection was extended.
      expect(downStats().ejectedUntil).toBeGreaterThan(ejectedUntil);

      // Back up: the next probe succeeds and it rejoins the ring.
      const readmitted = nextEvent(pool, 'readmit');
      if (how === 'killed') {
        // memcached's uptime counts whole seconds: leave no doubt the restart came after.
        await sleep(2000);
        await down.restart();
      } else down.thaw();
      // A restarted member comes back empty; a thawed one kept its (now stale) entries.
      expect(await within(readmitted, 3 * retryTimeout + 2000, 're-admission')).toEqual([
        down.id,
        how === 'hung',
      ]);
      expect(pool.stats().ring).toContain(down.id);
      expect(downStats().ejectedUntil).toBeUndefined();
      expect(await pool.set(keys[0], 'back', 0)).toBe(true);
      expect(await pool.get(keys[0])).toBe('back');
    },
  );

  /**
   * A store on the first shared member and a member of its own at `host`, which is ejected at
   * its first failure and probed every 300 ms; 40 keys set to 'v1' through Keyv.
   */
  async function storeWithOwnMember(host: string, namespace: string, options = {}) {
    const member = await startMemcached({ host });
    cleanups.push(() => member.stop());
    const live = servers[0];
    const source = new FixedMembers([live, member].map((s) => ({ host: s.host, port: s.port })));
    const store = new MemcachedStore({
      source,
      logger: quietLogger,
      failureLimit: 1,
      retryTimeout: 300,
      commandTimeout: 300,
      connectTimeout: 300,
      ...options,
    });
    cleanups.push(() => store.disconnect());
    const keyv = new Keyv({ store, namespace });
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    for (const key of keys) expect(await keyv.set(key, 'v1')).toBe(true);
    return { member, live, store, keyv, keys };
  }

  it('never serves entries a member kept while it was out of the ring', async () => {
    const { member: stale, store, keyv, keys } = await storeWithOwnMember('127.0.2.7', 'stale');

    // The member stalls (SIGSTOP) and is ejected; meanwhile every key changes, some are deleted.
    await stale.freeze();
    cleanups.push(() => stale.thaw());
    for (let i = 0; i < 50 && store.stats().ring.includes(stale.id); i++)
      await keyv.get(keys[i % 40]);
    expect(store.stats().ring).not.toContain(stale.id);
    for (const key of keys) expect(await keyv.set(key, 'v2')).toBe(true);
    for (const key of keys.slice(0, 4)) await keyv.delete(key);

    // It answers again without having restarted: it still holds the v1 entries.
    const readmitted = nextEvent(store, 'readmit');
    stale.thaw();
    expect(await within(readmitted, 5000, 're-admission')).toEqual([stale.id, true]);
    expect(store.stats().ring).toContain(stale.id);
    const values = await Promise.all(keys.map((key) => keyv.get(key)));
    // Nothing from before the stall: misses (a new generation) or v2, never v1, never a deleted key.
    expect(values.filter((v) => v === 'v1')).toEqual([]);
    expect(values.slice(0, 4)).toEqual([undefined, undefined, undefined, undefined]);
  });

  it('knows a member restarted within a second of its ejection: no new generation', async () => {
    const { member, live, store, keyv, keys } = await storeWithOwnMember(
      '127.0.2.10',
      'quick-restart',
      { warmupPeriod: 0 },
    );

    member.kill('SIGKILL');
    for (let i = 0; i < 50 && store.stats().ring.includes(member.id); i++)
      await keyv.get(keys[i % 40]);
    expect(store.stats().ring).not.toContain(member.id);
    // Back, empty, well within memcached's one-second uptime resolution of the ejection.
    const readmitted = nextEvent(store, 'readmit');
    await member.restart();
    expect(await within(readmitted, 5000, 're-admission')).toEqual([member.id, false]);
    // Same generation: every key the live member held is still a hit.
    const values = await Promise.all(keys.map((key) => keyv.get(key)));
    const hits = values.filter((v) => v === 'v1').length;
    const liveItems = Number((await live.stats()).curr_items);
    expect(hits).toBeGreaterThan(0);
    expect(values.filter((v) => v !== undefined && v !== 'v1')).toEqual([]);
    // The live member holds its share of the 40 keys plus the generation token.
    expect(hits).toBeLessThanOrEqual(liveItems);
  });

  it('a member DNS drops and names again serves at once; what this process wrote elsewhere meanwhile is cleared on it first', async () => {
    const [back, neighbour] = await Promise.all(
      ['127.0.2.8', '127.0.2.10'].map((host) => startMemcached({ host })),
    );
    cleanups.push(
      () => back.stop(),
      () => neighbour.stop(),
    );
    const pool = new MemcachedPool({
      connectTimeout: 300,
      commandTimeout: 300,
      maxConnections: 1,
      failureLimit: 2,
      retryTimeout: RETRY_TIMEOUT,
    });
    cleanups.push(() => pool.close());
    const members = [back, neighbour].map(({ host, port }) => ({ host, port }));
    pool.setMembers(members);
    // Keys the returning member owns, written while it is listed.
    const keys = Array.from({ length: 400 }, (_, i) => `flap-${i}`);
    await pool.setMany(keys.map((key) => ({ key, value: 'old', exptime: 0 })));
    const owned: string[] = [];
    for (const key of keys) if ((await rawGet(back, key)) === 'old') owned.push(key);
    expect(owned.length).toBeGreaterThan(50);

    pool.setMembers([members[1]]); // a readiness flap: out of DNS, still running, data kept
    const rewritten = owned.slice(0, owned.length / 2);
    for (const key of rewritten) expect(await pool.set(key, 'new', 0)).toBe(true);
    pool.setMembers(members);
    // Back on the ring at once, no probe first.
    expect(pool.stats().ring).toEqual([back.id, neighbour.id].sort());
    // Never the overwritten value; the keys not rewritten meanwhile still hit on it.
    for (const key of rewritten) expect(await pool.get(key)).toBeUndefined();
    for (const key of owned.slice(rewritten.length)) expect(await pool.get(key)).toBe('old');
    for (const key of rewritten) expect(await rawGet(back, key)).toBeUndefined();
    expect(pool.stats().invalidations).toBeGreaterThanOrEqual(rewritten.length);
  });

  it('reports nothing for commands cut short by removing a member or by close()', async () => {
    const member = await startMemcached({ host: '127.0.2.5' });
    cleanups.push(() => member.stop());
    const errors: MemcachedError[] = [];
    const refreshes: string[] = [];
    const pool = new MemcachedPool({
      connectTimeout: 500,
      // Long enough that only shutdown() can end the commands queued on the frozen member.
      commandTimeout: 10_000,
      maxConnections: 1,
      failureLimit: 1,
      retryTimeout: RETRY_TIMEOUT,
    });
    pool.on('failure', (error) => errors.push(error));
    pool.on('memberFailure', (id) => refreshes.push(id));
    cleanups.push(() => pool.close());
    cleanups.push(() => member.thaw());

    for (const end of ['scale-down', 'close'] as const) {
      pool.setMembers([{ host: member.host, port: member.port }]);
      // Back after a scale-down, it is probed before it serves.
      await waitFor('the probe to admit it', () => pool.stats().ring.includes(member.id), 2_000);
      expect(await pool.set('cut-1', 'v', 0)).toBe(true);
      await member.freeze();
      const pending = Promise.all([
        pool.get('cut-1'),
        pool.set('cut-2', 'v', 0),
        pool.getMany(['cut-1', 'cut-3']),
        pool.delete('cut-1'),
        pool.getOnEach('cut-1'),
      ]);
      // Written to the open connection; the frozen server will not answer them.
      await sleep(100);
      if (end === 'scale-down') pool.setMembers([]);
      else pool.close();
      const [get, set, getMany, del, onEach] = await within(pending, 2000, `${end} ending them`);
      expect([get, set, getMany, del]).toEqual([undefined, false, [undefined, undefined], false]);
      expect(onEach).toEqual([{ member: member.id, value: undefined, failed: true }]);
      expect(errors).toEqual([]);
      expect(refreshes).toEqual([]);
      member.thaw();
    }
    // After close(), operations are still misses, and silent: a shutdown is not a failure.
    expect(await pool.get('cut-1')).toBeUndefined();
    expect(errors).toEqual([]);
  });

  it('changes nothing when a probe ends after its member was removed or the pool closed', async () => {
    const member = await startMemcached({ host: '127.0.2.6' });
    cleanups.push(() => member.stop());
    cleanups.push(() => member.thaw());
    const retryTimeout = 200;
    for (const end of ['removal', 'close'] as const) {
      // Two pools alike on the same member; only `pool` loses it. `control` keeps it, so its
      // re-admission shows when the frozen member's answers to the probes have come in.
      const newPool = (events: string[]) => {
        const pool = new MemcachedPool({
          connectTimeout: 500,
          // The probe of the frozen member stays in flight for up to this long.
          commandTimeout: 1500,
          maxConnections: 1,
          failureLimit: 1,
          retryTimeout,
        });
        cleanups.push(() => pool.close());
        pool.on('eject', (id: string) => events.push(`eject ${id}`));
        pool.on('readmit', (id: string) => events.push(`readmit ${id}`));
        pool.setMembers([{ host: member.host, port: member.port }]);
        return pool;
      };
      const events: string[] = [];
      const controlEvents: string[] = [];
      const pool = newPool(events);
      const control = newPool(controlEvents);
      expect(await pool.set('probe-1', 'v', 0)).toBe(true);
      expect(await control.get('probe-1')).toBe('v');
      await member.freeze();
      // Ends only at commandTimeout: the one failure ejects it.
      const timedOut = Promise.all([pool.get('probe-1'), control.get('probe-1')]);
      expect(await within(timedOut, 4000, 'command timeout')).toEqual([undefined, undefined]);
      expect(events).toEqual([`eject ${member.id}`]);
      expect(controlEvents).toEqual([`eject ${member.id}`]);
      // The probes start after retryTimeout and hang on the frozen server; then the server answers
      // them, just after the member was removed from `pool` or `pool` closed.
      await sleep(retryTimeout + 200);
      if (end === 'removal') pool.setMembers([]);
      else pool.close();
      member.thaw();
      await waitFor(
        "the control pool's probe answered",
        () => controlEvents.includes(`readmit ${member.id}`),
        3_000,
      );
      expect(events).toEqual([`eject ${member.id}`]);
      expect(pool.stats().ring).toEqual([]);
      expect(pool.stats().members).toEqual([]);
    }
  });
});
