import type { INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import Keyv from 'keyv';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CacheService, FixedMembers, K8sModule, MemcachedStore } from 'nestjs-k8s';
import { memcachedAvailable, startMemcached, stopAllMemcached } from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { quietLogger } from '../support/quiet-logger.js';
import { scaled } from '../support/timing.js';
import { sleep } from '../support/wait-for.js';

// This file's loopback range: 127.0.73.x. Two stores (or two Nest apps) in one process stand for
// two pods on the same memcached members.

/** How long a pod trusts its namespace generation here. */
const GENERATION_CACHE_TIME = scaled(1_000);
const KEYS = Array.from({ length: 20 }, (_, i) => `key-${i}`);

describe.runIf(memcachedAvailable())('clear(): the bound holds for idle pods too', () => {
  let members: MemcachedProcess[];
  const closers: Array<() => Promise<unknown>> = [];

  beforeEach(async () => {
    members = await Promise.all([1, 2].map((i) => startMemcached({ host: `127.0.73.${i}` })));
  });
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close()));
    await stopAllMemcached();
  });

  /** One pod: a Keyv over its own MemcachedStore on the shared members, namespace `ns`. */
  function pod(namespace: string): Keyv {
    const store = new MemcachedStore({
      source: new FixedMembers(members.map(({ host, port }) => ({ host, port }))),
      generationCacheTime: GENERATION_CACHE_TIME,
      commandTimeout: scaled(1_000),
      logger: quietLogger,
    });
    const keyv = new Keyv({ store, namespace });
    closers.push(() => keyv.disconnect());
    return keyv;
  }

  it('an idle pod: its first get and getMany after the clear miss; its writes after it are read by both', async () => {
    const a = pod('idle');
    const b = pod('idle');
    for (const key of KEYS) await a.set(key, `old ${key}`);
    // Pod B reads the values (its generation is confirmed now): the control that they are there.
    expect(await b.get(KEYS[0])).toBe(`old ${KEYS[0]}`);
    expect(await b.get(KEYS)).toEqual(KEYS.map((key) => `old ${key}`));

    await sleep(2 * GENERATION_CACHE_TIME); // idle: no read, no write
    await a.clear();

    expect(await b.get(KEYS[0])).toBeUndefined();
    expect(await b.get(KEYS)).toEqual(KEYS.map(() => undefined));
    // A write B makes now lands in the new generation: both pods read it.
    expect(await b.set(KEYS[1], 'new from b')).toBe(true);
    expect(await b.get(KEYS[1])).toBe('new from b');
    expect(await a.get(KEYS[1])).toBe('new from b');
  });

  it('a busy pod: no read that starts more than generationCacheTime after the clear resolved sees an old value', async () => {
    const a = pod('busy');
    const b = pod('busy');
    await a.set('hot', 'old');
    expect(await b.get('hot')).toBe('old');

    let clearedAt = 0;
    const clearing = sleep(GENERATION_CACHE_TIME / 3).then(async () => {
      await a.clear();
      clearedAt = Date.now();
    });
    const reads: Array<{ startedAt: number; value: unknown }> = [];
    // Bounded: at most 2,000 reads or 4 cache times, whichever ends first.
    const until = Date.now() + 4 * GENERATION_CACHE_TIME;
    for (let i = 0; i < 2_000 && Date.now() < until; i++) {
      const startedAt = Date.now();
      reads.push({ startedAt, value: await b.get('hot') });
      await sleep(5);
    }
    await clearing;

    // The old value was read during the run (the reads could see it), and none started late.
    expect(reads.some((read) => read.value === 'old')).toBe(true);
    const late = reads.filter((read) => read.startedAt > clearedAt + GENERATION_CACHE_TIME);
    expect(late.length).toBeGreaterThan(0);
    expect(late.filter((read) => read.value !== undefined)).toEqual([]);
  });
});

describe.runIf(memcachedAvailable())(
  'clear() with cache.local: the bound with the local tier',
  () => {
    let member: MemcachedProcess;
    const apps: INestApplicationContext[] = [];

    beforeEach(async () => {
      member = await startMemcached({ host: '127.0.73.10' });
    });
    afterEach(async () => {
      await Promise.all(apps.splice(0).map((app) => app.close()));
      await stopAllMemcached();
    });

    async function pod(): Promise<CacheService> {
      const moduleRef = await Test.createTestingModule({
        imports: [
          K8sModule.forRoot({
            cache: {
              host: member.id,
              namespace: 'local-bound',
              generationCacheTime: GENERATION_CACHE_TIME,
              // Far longer than the generation's cache time: the tier alone would serve for 60 s.
              local: { max: 100, ttl: 60_000 },
            },
          }),
        ],
      }).compile();
      const app = await moduleRef.createNestApplication({ logger: false }).init();
      apps.push(app);
      return app.get(CacheService);
    }

    it('an idle pod with a local copy stops serving it once generationCacheTime has passed since its last confirmation', async () => {
      const a = await pod();
      const b = await pod();
      await a.set('hot', 'old');
      expect(await b.get('hot')).toBe('old'); // now in B's local tier too
      await a.clear();
      await sleep(GENERATION_CACHE_TIME);
      expect(await b.get('hot')).toBeUndefined();
      // And a value written afterwards is read by both, through both tiers.
      await b.set('hot', 'new');
      expect(await a.get('hot')).toBe('new');
      expect(await b.get('hot')).toBe('new');
    });
  },
);
