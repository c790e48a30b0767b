import type { INestApplicationContext } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { Test } from '@nestjs/testing';
import type { Cache } from 'cache-manager';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CACHE_MANAGER, CacheService, K8sModule, K8sOptionsError } from 'nestjs-k8s';
import type { K8sCacheOptions, K8sModuleOptions } from 'nestjs-k8s';
import { memcachedAvailable, startMemcached, stopAllMemcached } from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { sleepUntil, waitFor } from '../support/wait-for.js';

// This file's loopback range: 127.0.72.x. What CacheModule.register({ ttl, refreshThreshold,
// stores }) users reach for, on real memcached.

/** The README's forRootAsync example, as users write it (values from the environment are strings). */
function k8sModuleFromConfig() {
  return K8sModule.forRootAsync({
    isGlobal: true,
    imports: [ConfigModule],
    inject: [ConfigService],
    useFactory: (config: ConfigService): K8sModuleOptions => ({
      cache: {
        host: config.get<string>('CACHE_HOST'), // unset: an in-memory cache
        namespace: config.get<string>('CACHE_NAMESPACE', 'myapp'),
        ttl: Number(config.get('CACHE_TTL', 60_000)),
        refreshThreshold: Number(config.get('CACHE_REFRESH_THRESHOLD', 0)),
        local: config.get('CACHE_LOCAL_TTL')
          ? { max: 1_000, ttl: Number(config.get('CACHE_LOCAL_TTL')) }
          : undefined,
      },
    }),
  });
}

describe.runIf(memcachedAvailable())('CacheModule.register options on K8sModule', () => {
  let memcached: MemcachedProcess;
  const apps: INestApplicationContext[] = [];

  beforeAll(async () => {
    memcached = await startMemcached({ host: '127.0.72.1' });
  });
  afterEach(async () => {
    memcached.thaw(); // a failed nonBlocking test must not leave it stopped
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(async () => {
    await stopAllMemcached();
  });

  async function boot(imports: unknown[]): Promise<INestApplicationContext> {
    const moduleRef = await Test.createTestingModule({ imports: imports as never[] }).compile();
    const app = await moduleRef.createNestApplication({ logger: false }).init();
    apps.push(app);
    return app;
  }

  /** One "pod" on the shared member; its namespace generation is read once, up front. */
  async function pod(namespace: string, options: K8sCacheOptions = {}): Promise<CacheService> {
    const app = await boot([
      K8sModule.forRoot({
        cache: { host: memcached.id, namespace, generationCacheTime: 600_000, ...options },
      }),
    ]);
    const cache = app.get(CacheService);
    await cache.get('warm-up');
    return cache;
  }

  it.each([
    ['memcached only', undefined],
    ['with a local tier', { max: 100, ttl: 60_000 }],
  ])(
    'refreshThreshold: a wrap hit near expiry answers at once and stores a fresh value for every pod (%s)',
    async (label, local) => {
      const ns = `refresh-${label.replaceAll(' ', '-')}`;
      const ttl = 3_000;
      const refreshThreshold = 2_000;
      const cache = await pod(ns, { ttl, refreshThreshold, local });
      const other = await pod(ns); // reads memcached only
      let runs = 0;
      const produce = () => ({ run: ++runs });

      expect(await cache.wrap('report', produce)).toEqual({ run: 1 });
      const storedBy = Date.now();
      // Far from expiry: a plain hit, no refresh (the function would have run synchronously).
      expect(await cache.wrap('report', produce)).toEqual({ run: 1 });
      expect(runs).toBe(1);

      // Less than refreshThreshold left: the cached value now, the function in the background.
      await sleepUntil(storedBy + ttl - refreshThreshold);
      expect(await cache.wrap('report', produce)).toEqual({ run: 1 });
      expect(runs).toBe(2);
      // The fresh value reaches memcached (with a local tier too), so other pods see it.
      await waitFor(
        'the refreshed value in memcached',
        async () => {
          const seen = await other.get<{ run: number }>('report');
          return seen?.run === 2;
        },
        2_000,
      );
      expect(await cache.get('report')).toEqual({ run: 2 });
    },
  );

  it('nonBlocking: writes resolve without waiting for memcached, and get answers from the first tier', async () => {
    const options = { local: { max: 100, ttl: 60_000 }, commandTimeout: 10_000 };
    const blocking = await pod('non-blocking', options);
    const fast = await pod('non-blocking', { ...options, nonBlocking: true });
    const reader = await pod('non-blocking');
    await reader.set('only-in-memcached', 'there');

    // cache-manager races the tiers on get: the local tier answers first, a local miss is a miss.
    expect(await fast.get('only-in-memcached')).toBeUndefined();
    expect(await blocking.get('only-in-memcached')).toBe('there');

    await memcached.freeze(); // connections stay open, nothing is answered
    let blockingDone = false;
    const blockingSet = blocking.set('slow', 'b').then(() => (blockingDone = true));
    await fast.set('quick', 'f'); // resolves while memcached cannot answer
    expect(await fast.get('quick')).toBe('f'); // from the local tier
    expect(blockingDone).toBe(false); // still waiting for memcached (commandTimeout is 10 s)
    memcached.thaw();

    await blockingSet;
    await waitFor(
      'the nonBlocking write in memcached',
      async () => {
        return (await reader.get('quick')) === 'f';
      },
      5_000,
    );
    expect(await reader.get('slow')).toBe('b');
  });

  it('forRootAsync with ConfigService: options from the environment, on real memcached', async () => {
    const env = {
      CACHE_HOST: memcached.id,
      CACHE_NAMESPACE: 'orders',
      CACHE_TTL: '60000',
      CACHE_REFRESH_THRESHOLD: '10000',
      CACHE_LOCAL_TTL: '2000',
    };
    const app = await boot([
      ConfigModule.forRoot({ ignoreEnvFile: true, load: [() => env] }),
      k8sModuleFromConfig(),
    ]);
    const cache = app.get(CacheService);
    const manager = app.get<Cache>(CACHE_MANAGER);
    expect(cache.servers()).toEqual([memcached.id]);

    const setsBefore = Number((await memcached.stats()).cmd_set);
    const before = Date.now();
    await cache.set('order:1', { total: 42 });
    const after = Date.now();
    expect(Number((await memcached.stats()).cmd_set)).toBeGreaterThan(setsBefore);
    // CACHE_TTL, read as a string, became the module's ttl.
    const expires = await manager.ttl('order:1');
    expect(expires).toBeGreaterThanOrEqual(before + 60_000);
    expect(expires).toBeLessThanOrEqual(after + 60_000);

    // The namespace is shared with another pod configured the same way.
    const other = await pod('orders');
    expect(await other.get('order:1')).toEqual({ total: 42 });
    // CACHE_LOCAL_TTL turned the local tier on: a hit that memcached never sees.
    const getsBefore = Number((await memcached.stats()).cmd_get);
    expect(await cache.get('order:1')).toEqual({ total: 42 });
    expect(Number((await memcached.stats()).cmd_get)).toBe(getsBefore);
  });

  it('forRootAsync with ConfigService: a bad value fails start-up with what to fix', async () => {
    const env = { CACHE_HOST: memcached.id, CACHE_TTL: '60s' };
    const compile = Test.createTestingModule({
      imports: [
        ConfigModule.forRoot({ ignoreEnvFile: true, load: [() => env] }),
        k8sModuleFromConfig(),
      ],
    }).compile();
    await expect(compile).rejects.toThrow(K8sOptionsError);
    await expect(compile).rejects.toThrow(/cache\.ttl must be an integer from 0 .*got NaN/);
  });
});
