import { createReadStream } from 'node:fs';
import { CacheInterceptor as NestCacheInterceptor } from '@nestjs/cache-manager';
import { Controller, Get, Param, Post, StreamableFile, UseInterceptors } from '@nestjs/common';
import type { ExecutionContext, INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CacheInterceptor, CacheKey, CacheService, CacheTTL, K8sModule } from 'nestjs-k8s';
import type { K8sCacheOptions } from 'nestjs-k8s';
import { memcachedAvailable, startMemcached, stopAllMemcached } from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { sleep, sleepUntil, waitForValue } from '../support/wait-for.js';

// This file's loopback range: 127.0.87.x. Nest HTTP apps in one process stand for pods.

/** Handler runs, counted across every app of the test. */
const runs = { items: 0, keyed: 0, nest: 0, posts: 0, file: 0, failing: 0, short: 0 };
/** Later runs of `short` (the refreshes) wait until the test opens this gate. */
let refreshGate = gate();

function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

@Controller()
@UseInterceptors(CacheInterceptor)
class ItemsController {
  /** A slow database query: 1 s (every concurrent request of a test arrives meanwhile). */
  @Get('items/:id')
  @CacheTTL(60_000)
  async item(@Param('id') id: string): Promise<{ id: string; run: number }> {
    const run = ++runs.items;
    await sleep(1_000);
    return { id, run };
  }

  @Get('keyed')
  @CacheKey((context: ExecutionContext) => `keyed:${context.getHandler().name}`)
  async keyed(): Promise<{ run: number }> {
    const run = ++runs.keyed;
    await sleep(100);
    return { run };
  }

  /** Fresh for 1 s. */
  @Get('short')
  @CacheTTL(1_000)
  async short(): Promise<{ run: number }> {
    const run = ++runs.short;
    if (run > 1) await refreshGate.promise;
    return { run };
  }

  @Post('items')
  async create(): Promise<{ run: number }> {
    return { run: ++runs.posts };
  }

  @Get('file')
  file(): StreamableFile {
    runs.file++;
    return new StreamableFile(createReadStream(new URL(import.meta.url)));
  }

  @Get('failing')
  async failing(): Promise<never> {
    runs.failing++;
    await sleep(100);
    throw new Error('database down');
  }
}

@Controller()
class NestInterceptedController {
  @Get('nest')
  @UseInterceptors(NestCacheInterceptor)
  @CacheTTL(60_000)
  async nest(): Promise<{ run: number }> {
    const run = ++runs.nest;
    await sleep(1_000);
    return { run };
  }
}

describe.runIf(memcachedAvailable())('CacheInterceptor: a drop-in without the stampede', () => {
  let member: MemcachedProcess;
  const apps: INestApplication[] = [];
  let namespaces = 0;
  let ns: string;

  beforeAll(async () => {
    member = await startMemcached({ host: '127.0.87.1' });
  });
  beforeEach(() => {
    ns = `interceptor${++namespaces}-${Date.now()}`;
    for (const name of Object.keys(runs)) runs[name as keyof typeof runs] = 0;
    refreshGate = gate();
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(async () => {
    await stopAllMemcached();
  });

  /** One "pod": an HTTP app on the member; resolves to its base URL. */
  async function pod(options: K8sCacheOptions = {}): Promise<string> {
    const moduleRef = await Test.createTestingModule({
      imports: [
        K8sModule.forRoot({
          isGlobal: true,
          cache: { host: member.id, namespace: ns, ...options },
        }),
      ],
      controllers: [ItemsController, NestInterceptedController],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.listen(0, '127.0.0.1');
    apps.push(app);
    await app.get(CacheService).get('warm-up'); // the namespace generation, before the next pod
    return app.getUrl();
  }

  async function fetchJson(url: string): Promise<{ body: unknown; cache: string | null }> {
    const response = await fetch(url);
    expect(response.status).toBe(200);
    return { body: await response.json(), cache: response.headers.get('x-cache') };
  }

  it('runs the handler once for concurrent requests on every pod, where @nestjs/cache-manager’s runs it per request', async () => {
    const urls = [await pod(), await pod(), await pod()];
    const answers = await Promise.all(
      urls.flatMap((url) => Array.from({ length: 8 }, () => fetchJson(`${url}/items/7`))),
    );
    expect(runs.items).toBe(1);
    expect(answers.map((a) => a.body)).toEqual(Array(24).fill({ id: '7', run: 1 }));
    // Every request waited for the one run: a miss for all of them.
    expect(answers.map((a) => a.cache)).toEqual(Array(24).fill('MISS'));
    // Then a hit, in any pod, keyed by the URL.
    expect(await fetchJson(`${urls[2]}/items/7`)).toEqual({
      body: { id: '7', run: 1 },
      cache: 'HIT',
    });
    expect((await fetchJson(`${urls[0]}/items/8`)).body).toEqual({ id: '8', run: 2 });

    // The control: @nestjs/cache-manager's interceptor on the same cache runs the handler for
    // every request that misses.
    await Promise.all(
      urls.flatMap((url) => Array.from({ length: 8 }, () => fetchJson(`${url}/nest`))),
    );
    expect(runs.nest).toBe(24);
  });

  it('keeps @CacheKey factories, leaves POST alone, never caches or shares a stream, passes handler errors', async () => {
    const [a, b] = [await pod(), await pod()];
    const keyed = await Promise.all([a, b, a, b].map((url) => fetchJson(`${url}/keyed`)));
    expect(keyed.map((k) => k.body)).toEqual(Array(4).fill({ run: 1 }));
    expect(runs.keyed).toBe(1);
    // Stored under the @CacheKey factory's key, as @nestjs/cache-manager would.
    const apps0 = apps[0].get(CacheService);
    expect(await apps0.get('keyed:keyed')).toEqual({ run: 1 });

    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${a}/items`, { method: 'POST' });
      expect(response.status).toBe(201);
    }
    expect(runs.posts).toBe(3);

    const files = await Promise.all([a, a, b].map((url) => fetch(`${url}/file`)));
    for (const file of files) {
      expect(file.status).toBe(200);
      expect(await file.text()).toContain('CacheInterceptor: a drop-in without the stampede');
    }
    expect(runs.file).toBe(3);

    const failures = await Promise.all([a, b].map((url) => fetch(`${url}/failing`)));
    expect(failures.map((f) => f.status)).toEqual([500, 500]);
    // The handler's error reached the requests (shared or not), and nothing was cached: the
    // next request runs the handler again.
    const failed = runs.failing;
    expect(failed).toBeGreaterThanOrEqual(1);
    expect((await fetch(`${a}/failing`)).status).toBe(500);
    expect(runs.failing).toBe(failed + 1);
  });

  it('serves a stale response at once while one pod refreshes it (staleWhileRevalidate)', async () => {
    const urls = [
      await pod({ staleWhileRevalidate: 30_000 }),
      await pod({ staleWhileRevalidate: 30_000 }),
    ];
    expect((await fetchJson(`${urls[0]}/short`)).body).toEqual({ run: 1 });
    // Written just before the response: fresh until about now + 1 s.
    await sleepUntil(Date.now() + 1_100);
    const stale = await Promise.all(
      urls.flatMap((url) => Array.from({ length: 4 }, () => fetchJson(`${url}/short`))),
    );
    // Answered from the cache while the refresh (held until now) runs.
    expect(stale).toEqual(Array(8).fill({ body: { run: 1 }, cache: 'HIT' }));
    expect(runs.short).toBe(2);
    refreshGate.open();
    await waitForValue(
      'the refreshed response',
      async () => (await fetchJson(`${urls[1]}/short`)).body,
      (body) => (body as { run: number }).run === 2,
      5_000,
    );
    expect(runs.short).toBe(2);
  });
});
