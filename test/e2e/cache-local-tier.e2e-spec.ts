import type { INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CacheService, K8sModule } from 'nestjs-k8s';
import type { K8sCacheOptions } from 'nestjs-k8s';
import { memcachedAvailable, startMemcached, stopAllMemcached } from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { sleepUntil } from '../support/wait-for.js';

// This file's loopback range: 127.0.71.x. Two Nest apps in one process stand for two pods.

describe.runIf(memcachedAvailable())('cache.local: an in-process first tier', () => {
  let memcached: MemcachedProcess;
  const apps: INestApplicationContext[] = [];

  beforeAll(async () => {
    memcached = await startMemcached({ host: '127.0.71.1' });
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(async () => {
    await stopAllMemcached();
  });

  /** One "pod": its own Nest app on the shared member, in `namespace`. */
  async function pod(namespace: string, options: K8sCacheOptions = {}): Promise<CacheService> {
    const moduleRef = await Test.createTestingModule({
      imports: [
        K8sModule.forRoot({
          cache: {
            host: memcached.id,
            namespace,
            // The namespace generation is read once: memcached's get counters then move only
            // for the keys the test reads.
            generationCacheTime: 600_000,
            ...options,
          },
        }),
      ],
    }).compile();
    const app = await moduleRef.createNestApplication({ logger: false }).init();
    apps.push(app);
    const cache = app.get(CacheService);
    await cache.get('warm-up'); // loads the generation
    return cache;
  }

  /** memcached's `cmd_get` (keys asked for) since `since`. */
  async function getsSince(since: number): Promise<number> {
    return Number((await memcached.stats()).cmd_get) - since;
  }
  const cmdGet = async () => Number((await memcached.stats()).cmd_get);

  it('serves a hit from the process without a memcached round trip; get reads through, wrap fills it', async () => {
    const a = await pod('hits', { local: { max: 100, ttl: 60_000 } });
    const b = await pod('hits');
    await a.set('mine', { n: 1 });
    await b.set('theirs', { n: 2 });

    let before = await cmdGet();
    for (let i = 0; i < 5; i++) expect(await a.get('mine')).toEqual({ n: 1 });
    expect(await getsSince(before)).toBe(0);

    // The same counter sees a read that goes to memcached: a plain get does not fill the local
    // tier (as cache-manager's multi-store get), so it goes there every time.
    before = await cmdGet();
    expect(await a.get('theirs')).toEqual({ n: 2 });
    expect(await a.get('theirs')).toEqual({ n: 2 });
    expect(await getsSince(before)).toBe(2);

    // wrap copies a memcached hit into the local tier.
    let produced = 0;
    expect(await a.wrap('theirs', () => ({ n: ++produced }))).toEqual({ n: 2 });
    expect(produced).toBe(0);
    before = await cmdGet();
    expect(await a.get('theirs')).toEqual({ n: 2 });
    expect(await getsSince(before)).toBe(0);
  });

  it('serves a value another pod changed or deleted stale for at most local.ttl', async () => {
    const localTtl = 1_500;
    const a = await pod('stale', { local: { max: 100, ttl: localTtl } });
    const b = await pod('stale');
    await a.set('changed', 'v1');
    await a.set('deleted', 'here');
    const storedBy = Date.now();
    await b.set('changed', 'v2');
    await b.del('deleted');

    expect(await b.get('changed')).toBe('v2');
    expect(await a.get('changed')).toBe('v1'); // the trade-off: stale in a's process
    expect(await a.get('deleted')).toBe('here');

    await sleepUntil(storedBy + localTtl);
    expect(await a.get('changed')).toBe('v2');
    expect(await a.get('deleted')).toBeUndefined();
  });

  it('keeps at most local.max entries (the least recently used leave first)', async () => {
    const a = await pod('bounded', { local: { max: 3, ttl: 60_000 } });
    for (const key of ['k1', 'k2', 'k3', 'k4', 'k5']) await a.set(key, key.toUpperCase());

    let before = await cmdGet();
    expect(await a.mget(['k3', 'k4', 'k5'])).toEqual(['K3', 'K4', 'K5']);
    expect(await getsSince(before)).toBe(0);

    before = await cmdGet();
    expect(await a.get('k1')).toBe('K1'); // pushed out locally, still in memcached
    expect(await a.get('k2')).toBe('K2');
    expect(await getsSince(before)).toBe(2);
  });

  it('del and clear reach both tiers of the instance that calls them', async () => {
    const a = await pod('both', { local: { max: 100, ttl: 60_000 } });
    const b = await pod('both');
    await a.set('gone', 1);
    await a.set('kept', 2);
    expect(await a.del('gone')).toBe(true);
    // Undefined only if neither tier answers: the local copy and memcached's are both gone.
    expect(await a.get('gone')).toBeUndefined();
    expect(await b.get('gone')).toBeUndefined();
    expect(await b.get('kept')).toBe(2);

    await a.set('x', 'before clear');
    await a.clear();
    expect(await a.get('x')).toBeUndefined();
    expect(await a.get('kept')).toBeUndefined();
    // A pod that reads the generation after the clear sees it empty too.
    const c = await pod('both');
    expect(await c.get('kept')).toBeUndefined();
  });

  it('clear() empties its namespace only and never flushes memcached', async () => {
    const one = await pod('one', { local: { max: 100, ttl: 60_000 } });
    const two = await pod('two');
    await one.mset([
      { key: 'a', value: 'one-a' },
      { key: 'b', value: 'one-b' },
    ]);
    await two.mset([
      { key: 'a', value: 'two-a' },
      { key: 'b', value: 'two-b' },
    ]);
    const itemsBefore = Number((await memcached.stats()).curr_items);

    await one.clear();

    expect(await one.mget(['a', 'b'])).toEqual([undefined, undefined]);
    expect(await two.mget(['a', 'b'])).toEqual(['two-a', 'two-b']);
    const stats = await memcached.stats();
    expect(stats.cmd_flush).toBe('0');
    // The old generation's entries stay until they expire or are evicted; nothing was dropped.
    expect(Number(stats.curr_items)).toBeGreaterThanOrEqual(itemsBefore);
  });
});
