import { createCache } from 'cache-manager';
import Keyv from 'keyv';
import { MemcacheClient } from 'memcache-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CacheService } from '../../lib/cache/cache.service.js';
import type { MemcachedError } from '../../lib/errors/memcached.errors.js';
import {
  MemcachedMemberError,
  MemcachedUnavailableError,
} from '../../lib/errors/memcached.errors.js';
import { MemcachedStore } from '../../lib/memcached/store/memcached.store.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { memcachedAvailable, startMemcached, stopAllMemcached } from '../support/memcached.js';
import { VerifiedLoad } from '../support/verified-load.js';
import { quietLogger } from '../support/quiet-logger.js';
import { sleep, waitFor } from '../support/wait-for.js';
import { scaled } from '../support/timing.js';

// This file's loopback range: 127.0.8.x.
const run = memcachedAvailable();
// A second for live members under 32 workers on two cores: the SIGKILL test counts no error; the
// SIGSTOP test bounds callers' waits by it.
const COMMAND_TIMEOUT = scaled(1_000);
const CONNECT_TIMEOUT = scaled(1_000);
const RETRY_TIMEOUT = scaled(1_000);
const FAILURE_LIMIT = 2;
const WORKERS = 32;
const KEYS = 3_000;

/** The next `name` event's arguments, or a rejection naming what did not happen within `ms`. */
function nextEvent(store: MemcachedStore, name: string, ms: number): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      store.off(name, listener);
      reject(new Error(`no ${name} event within ${ms} ms`));
    }, ms);
    const listener = (...args: unknown[]) => {
      clearTimeout(timer);
      resolve(args);
    };
    store.once(name, listener);
  });
}

describe.runIf(run)('member faults under load', () => {
  let members: MemcachedProcess[];
  const cleanups: Array<() => Promise<void> | void> = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);
  /** Totals over the file, for the figures line. */
  const figures = {
    operations: 0,
    verified: 0,
    faults: 0,
    wrong: 0,
    lost: 0,
    rejected: 0,
    longestWaitOnHungMs: 0,
  };

  function setup(namespace: string) {
    const store = new MemcachedStore({
      host: members.map((m) => m.id).join(','),
      refreshInterval: 0,
      commandTimeout: COMMAND_TIMEOUT,
      connectTimeout: CONNECT_TIMEOUT,
      failureLimit: FAILURE_LIMIT,
      retryTimeout: RETRY_TIMEOUT,
      logger: quietLogger,
    });
    cleanups.push(() => store.disconnect());
    const errors: MemcachedError[] = [];
    store.on('error', (error: MemcachedError) => errors.push(error));
    const readmits: Array<[string, boolean]> = [];
    store.on('readmit', (member: string, kept: boolean) => void readmits.push([member, kept]));
    const keyv = new Keyv({ store, namespace });
    const load = new VerifiedLoad(keyv, {
      workers: WORKERS,
      keys: KEYS,
      maxPadding: 4_000,
      // Re-admissions move keys back (or start a new generation): misses then are expected.
      failures: () => errors.length + readmits.length,
    });
    cleanups.push(() => {
      const { total } = load;
      figures.operations += total.ops;
      figures.verified += total.verified;
      figures.wrong += total.wrong;
      figures.lost += total.lost;
      figures.rejected += total.rejected;
    });
    return { store, keyv, load, errors, readmits };
  }

  const memberStats = (store: MemcachedStore, id: string) =>
    store.stats().members.find((m) => m.member === id)!;

  beforeAll(async () => {
    members = await Promise.all([1, 2, 3].map((i) => startMemcached({ host: `127.0.8.${i}` })));
    process.on('unhandledRejection', onUnhandled);
  });

  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
    // Every test leaves the three members running and answering.
    for (const member of members) {
      member.thaw();
      if (
        !(await member.stats().then(
          () => true,
          () => false,
        ))
      )
        await member.restart();
    }
  });

  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await stopAllMemcached();
    console.info(
      `member faults: ${figures.operations} operations, ${figures.verified} values verified, ` +
        `${figures.faults} faults injected, ${figures.wrong} wrong, ${figures.lost} lost, ` +
        `${figures.rejected} rejected, ${unhandled.length} unhandled rejections; longest call ` +
        `while a member hung: ${figures.longestWaitOnHungMs} ms (commandTimeout ${COMMAND_TIMEOUT} ms)`,
    );
  });

  it('SIGKILL: no caller sees an error, its keys move, it is retried and rejoins after restart', async () => {
    const { store, keyv, load, errors, readmits } = setup('kill');
    await load.run(1_000);
    const victim = members[0];
    expect(memberStats(store, victim.id).ops).toBeGreaterThan(100);

    const ejected = nextEvent(store, 'eject', 5_000);
    const running = load.run(3_000);
    await sleep(300);
    victim.kill('SIGKILL');
    figures.faults++;
    const during = await running;
    expect(during.rejected).toBe(0);
    expect(load.wrongSamples).toEqual([]);
    expect(during.wrong).toBe(0);
    expect(during.lost).toBe(0);
    const [member, error] = await ejected;
    expect(member).toBe(victim.id);
    expect(error).toBeInstanceOf(MemcachedMemberError);
    expect(store.stats().ring).not.toContain(victim.id);

    // Its keys live on the two others now: every one of 300 keys is stored and read back.
    const keys = Array.from({ length: 300 }, (_, i) => `moved-${i}`);
    expect(await keyv.setMany(keys.map((key) => ({ key, value: key })))).toEqual(
      keys.map(() => true),
    );
    expect(await keyv.get(keys)).toEqual(keys);

    // Tried again after retryTimeout: still dead, so it stays out for another retryTimeout.
    const firstUntil = memberStats(store, victim.id).ejectedUntil!;
    await waitFor(
      'the failed probe to extend the ejection',
      () => (memberStats(store, victim.id).ejectedUntil ?? 0) > firstUntil,
      3_000,
    );
    expect(store.stats().ring).not.toContain(victim.id);

    // Restarted (empty): the next probe re-admits it, and it serves its keys again.
    const readmitted = nextEvent(store, 'readmit', RETRY_TIMEOUT + 3_000);
    await victim.restart();
    expect(await readmitted).toEqual([victim.id, false]);
    expect(store.stats().ring).toContain(victim.id);
    const hitsBefore = memberStats(store, victim.id).hits;
    const after = await load.run(1_500);
    expect(after.rejected + after.wrong + after.lost).toBe(0);
    expect(memberStats(store, victim.id).hits).toBeGreaterThan(hitsBefore);
    expect(Number((await victim.stats()).curr_items)).toBeGreaterThan(50);
    expect(readmits.length).toBe(1);
    expect(
      errors.every((e) => !(e instanceof MemcachedMemberError) || e.member === victim.id),
    ).toBe(true);
  });

  it('SIGSTOP: callers wait about commandTimeout at most, the member is ejected, and returns after SIGCONT', async () => {
    const { store, load, errors, readmits } = setup('hang');
    await load.run(1_000);
    const hung = members[1];

    const ejected = nextEvent(store, 'eject', 5_000);
    const running = load.run(3_000);
    await sleep(300);
    await hung.freeze();
    figures.faults++;
    // memcache-client on its own never gives up on a hung server: each command waits for the
    // command timeout, forever. The pool's ejection is what stops that.
    const bare = new MemcacheClient({
      server: { server: hung.id, maxConnections: 1 },
      cmdTimeout: COMMAND_TIMEOUT,
    });
    const bareFailures: string[] = [];
    for (let i = 0; i < 3; i++) {
      await bare.get('any').catch((e: Error) => bareFailures.push(e.message));
    }
    bare.shutdown();
    expect(bareFailures).toEqual(['Command timeout', 'Command timeout', 'Command timeout']);

    const [member, error] = await ejected;
    const during = await running;
    expect(member).toBe(hung.id);
    expect(String(((error as MemcachedMemberError).cause as Error).message)).toMatch(/timeout/i);
    const hungErrors = errors.filter(
      (e) => e instanceof MemcachedMemberError && e.member === hung.id,
    );
    expect(hungErrors.length).toBeGreaterThanOrEqual(FAILURE_LIMIT);
    expect(during.rejected).toBe(0);
    expect(during.wrong).toBe(0);
    expect(during.lost).toBe(0);
    // Nobody waited on the hung member for much more than one command timeout (memcache-client
    // checks every 125 ms here); the load ran on while the member stayed frozen.
    figures.longestWaitOnHungMs = during.maxLatencyMs;
    expect(during.maxLatencyMs).toBeLessThan(2 * COMMAND_TIMEOUT + 500);
    expect(during.verified).toBeGreaterThan(1_000);
    expect(store.stats().ring).not.toContain(hung.id);

    // SIGCONT: the probe finds it answering with its old data, so it returns under a new
    // generation (none of its stale entries can be read).
    const readmitted = nextEvent(store, 'readmit', RETRY_TIMEOUT + 3_000);
    hung.thaw();
    expect(await readmitted).toEqual([hung.id, true]);
    expect(readmits).toEqual([[hung.id, true]]);
    const after = await load.run(1_500);
    expect(after.rejected + after.wrong + after.lost).toBe(0);
    expect(after.hits).toBeGreaterThan(100);
    expect(store.stats().ring).toContain(hung.id);
  });

  it('all members dead: every operation is a fast miss and the app keeps serving; restarted empty, caching resumes', async () => {
    const { store, keyv, load, errors } = setup('all-dead');
    const service = new CacheService(createCache({ stores: [keyv] }), store);
    await load.run(1_000);

    const running = load.run(2_000);
    await sleep(300);
    for (const member of members) member.kill('SIGKILL');
    figures.faults += members.length;
    const during = await running;
    expect(during.rejected + during.wrong + during.lost).toBe(0);
    expect(store.stats().ring).toEqual([]);

    // Every member is out of the ring: no operation even tries one, so none waits on a
    // connect or a command timeout. 600 calls complete in less time than two command timeouts.
    const errorsBefore = errors.length;
    let computed = 0;
    const started = Date.now();
    for (let i = 0; i < 200; i++) {
      expect(await keyv.get(`dead-${i}`)).toBeUndefined();
      expect(await keyv.set(`dead-${i}`, i)).toBe(false);
      // The app keeps serving: the value is computed each time instead of cached.
      expect(await service.wrap(`page-${i % 10}`, () => ++computed)).toBe(computed);
    }
    const elapsed = Date.now() - started;
    expect(computed).toBe(200);
    const reported = errors.slice(errorsBefore);
    expect(reported.length).toBeGreaterThan(0);
    expect(reported.every((e) => e instanceof MemcachedUnavailableError)).toBe(true);
    expect(elapsed).toBeLessThan(2 * COMMAND_TIMEOUT);

    // Restarted empty: the probes re-admit all three, and values are cached again.
    const readmitted = new Promise<void>((resolve) => {
      let n = 0;
      store.on('readmit', () => ++n === members.length && resolve());
    });
    await Promise.all(members.map((m) => m.restart()));
    figures.faults += members.length;
    await Promise.race([
      readmitted,
      sleep(RETRY_TIMEOUT + 4_000).then(() => {
        throw new Error('not every member was re-admitted');
      }),
    ]);
    expect(store.stats().ring).toEqual(members.map((m) => m.id).sort());
    let produced = 0;
    expect(await service.wrap('resumed', () => ++produced)).toBe(1);
    expect(await service.wrap('resumed', () => ++produced)).toBe(1);
    expect(produced).toBe(1);
    const after = await load.run(1_500);
    expect(after.rejected + after.wrong + after.lost).toBe(0);
    expect(after.hits).toBeGreaterThan(100);
    expect(unhandled).toEqual([]);
  });
});
