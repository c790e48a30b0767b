import { Controller, Get, Inject, Injectable, Module, UseInterceptors } from '@nestjs/common';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { Cache } from 'cache-manager';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CACHE_MANAGER,
  CacheInterceptor,
  CacheService,
  K8S_MEMCACHED_STORE,
  K8sModule,
  K8sOptionsError,
} from 'nestjs-k8s';
import type { MemcachedStore } from 'nestjs-k8s';
import { quietLogger } from '../support/quiet-logger.js';
import { sleep, waitFor } from '../support/wait-for.js';

let calls = 0;

@Controller()
class CountingController {
  @Get('count')
  @UseInterceptors(CacheInterceptor)
  count(): { calls: number } {
    return { calls: ++calls };
  }
}

@Injectable()
class Consumer {
  constructor(
    readonly service: CacheService,
    @Inject(CACHE_MANAGER) readonly manager: Cache,
    @Inject(K8S_MEMCACHED_STORE) readonly store: MemcachedStore | null,
  ) {}
}

@Module({ providers: [Consumer], exports: [Consumer] })
class FeatureModule {}

describe('K8sModule without a cache host (in-memory store)', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  async function boot(imports: unknown[]): Promise<INestApplication> {
    const moduleRef = await Test.createTestingModule({
      imports: imports as never[],
      controllers: [CountingController],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.listen(0, '127.0.0.1');
    return app;
  }

  it('gives CacheService, CACHE_MANAGER and CacheInterceptor one shared cache (isGlobal)', async () => {
    const nest = await boot([K8sModule.forRoot({ isGlobal: true }), FeatureModule]);
    const { service, manager, store } = nest.get(Consumer);
    expect(store).toBeNull(); // injectable in other modules; null without a cache host

    await service.set('greeting', { hello: 'world' });
    expect(await manager.get('greeting')).toEqual({ hello: 'world' });
    await manager.set('other', 42);
    expect(await service.get('other')).toBe(42);
    expect(await service.mget(['greeting', 'missing', 'other'])).toEqual([
      { hello: 'world' },
      undefined,
      42,
    ]);
    await service.mset([
      { key: 'a', value: 1 },
      { key: 'b', value: 2 },
    ]);
    expect(await service.mget(['a', 'b'])).toEqual([1, 2]);
    expect(await service.del('a')).toBe(true);
    expect(await service.get('a')).toBeUndefined();

    let computed = 0;
    const compute = async () => ({ n: ++computed });
    expect(await service.wrap('w', compute)).toEqual({ n: 1 });
    expect(await service.wrap('w', compute)).toEqual({ n: 1 });
    expect(computed).toBe(1);

    expect(service.servers()).toEqual([]);
    expect(service.stats()).toEqual({ backend: 'memory', servers: [] });
    await expect(service.refresh()).resolves.toBeUndefined();

    const url = `${await nest.getUrl()}/count`;
    const first = await (await fetch(url)).json();
    const second = await (await fetch(url)).json();
    expect(second).toEqual(first);
  });

  it('honours the module ttl and a per-call ttl', async () => {
    const nest = await boot([
      K8sModule.forRoot({ isGlobal: true, cache: { ttl: 60_000 } }),
      FeatureModule,
    ]);
    const { service } = nest.get(Consumer);
    await service.set('short', 'x', 50);
    await service.set('long', 'y');
    await sleep(120);
    expect(await service.get('short')).toBeUndefined();
    expect(await service.get('long')).toBe('y');
  });

  it('accepts forRootAsync with injected configuration', async () => {
    @Module({ providers: [{ provide: 'CONFIG', useValue: { ttl: 50 } }], exports: ['CONFIG'] })
    class ConfigModule {}
    const nest = await boot([
      K8sModule.forRootAsync({
        isGlobal: true,
        imports: [ConfigModule],
        inject: ['CONFIG'],
        useFactory: (config: { ttl: number }) => ({ cache: { ttl: config.ttl } }),
      }),
      FeatureModule,
    ]);
    const { service } = nest.get(Consumer);
    await service.set('k', 'v');
    expect(await service.get('k')).toBe('v');
    // The injected ttl is the module's default.
    await sleep(120);
    expect(await service.get('k')).toBeUndefined();
  });

  it('with nonBlocking, a write that cannot be cached is logged, never an unhandled rejection', async () => {
    const warnings: string[] = [];
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const moduleRef = await Test.createTestingModule({
        imports: [
          K8sModule.forRoot({ isGlobal: true, cache: { nonBlocking: true, local: {} } }),
          FeatureModule,
        ],
      }).compile();
      app = moduleRef.createNestApplication({
        logger: { ...quietLogger, warn: (message: unknown) => warnings.push(String(message)) },
      });
      await app.init();
      const { service } = app.get(Consumer);
      // BigInt is not JSON-serializable; set resolves at once, each tier's write fails later.
      await service.set('big', { n: 10n });
      await waitFor('both tiers to log the dropped write', () => warnings.length >= 2, 5_000);
      expect(warnings).toEqual([
        expect.stringMatching(/set\("big"\): not cached: .*BigInt/),
        expect.stringMatching(/set\("big"\): not cached: .*BigInt/),
      ]);
      expect(unhandled).toEqual([]);
      expect(await service.get('big')).toBeUndefined();
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('wrap returns what fn produced even when the cache cannot store it', async () => {
    const nest = await boot([K8sModule.forRoot({ isGlobal: true }), FeatureModule]);
    const { service } = nest.get(Consumer);
    // BigInt is not JSON-serializable: caching fails, the caller still gets the value.
    expect(await service.wrap('big', () => ({ n: 10n }))).toEqual({ n: 10n });
    await expect(
      service.wrap('boom', () => Promise.reject(new Error('fn failed'))),
    ).rejects.toThrow('fn failed');
  });

  it('fails at start-up with a K8sOptionsError for invalid options', async () => {
    const compile = (cache: object) =>
      Test.createTestingModule({ imports: [K8sModule.forRoot({ cache })] }).compile();
    await expect(compile({ refreshInterval: -5 })).rejects.toThrow(K8sOptionsError);
    await expect(compile({ host: 'two words' })).rejects.toThrow(/two words/);
    await expect(compile({ ttl: 1_000, refreshThreshold: 5_000 })).rejects.toThrow(
      /cache\.refreshThreshold \(5000 ms\) must be less than cache\.ttl/,
    );
    await expect(compile({ local: { max: 0 } })).rejects.toThrow(/cache\.local\.max/);
  });

  it('clear() empties the cache, a local tier in front of the in-memory store included', async () => {
    const nest = await boot([
      K8sModule.forRoot({ isGlobal: true, cache: { local: { max: 10, ttl: 60_000 } } }),
      FeatureModule,
    ]);
    const { service } = nest.get(Consumer);
    await service.mset([
      { key: 'a', value: 1 },
      { key: 'b', value: 2 },
    ]);
    expect(await service.mget(['a', 'b'])).toEqual([1, 2]);
    await service.clear();
    expect(await service.mget(['a', 'b'])).toEqual([undefined, undefined]);
  });
});
