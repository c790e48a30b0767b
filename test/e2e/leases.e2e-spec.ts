import type { INestApplicationContext } from '@nestjs/common';
import { CACHE_MANAGER } from '@nestjs/cache-manager';
import { Test } from '@nestjs/testing';
import type { Cache } from 'cache-manager';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CacheService, K8sModule } from 'nestjs-k8s';
import type { K8sCacheOptions } from 'nestjs-k8s';
import { HostileMember } from '../support/hostile-member.js';
import { memcachedAvailable, startMemcached, stopAllMemcached } from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { scaled } from '../support/timing.js';
import { sleep, sleepUntil, waitForValue } from '../support/wait-for.js';

// This file's loopback range: 127.0.86.x. Nest apps in one process stand for pods: each has its
// own store, connections and in-process coalescing, as a pod would.

describe.runIf(memcachedAvailable())('wrap across pods: leases and stale-while-revalidate', () => {
  let members: MemcachedProcess[];
  const apps: INestApplicationContext[] = [];
  const hostile: HostileMember[] = [];
  let namespaces = 0;

  beforeAll(async () => {
    members = await Promise.all([1, 2].map((i) => startMemcached({ host: `127.0.86.${i}` })));
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
    await Promise.all(hostile.splice(0).map((member) => member.stop()));
  });
  afterAll(async () => {
    await stopAllMemcached();
  });

  /** A namespace of its own for each test (they share the members). */
  const namespace = (): string => `lease${++namespaces}-${Date.now()}`;

  interface Pod {
    service: CacheService;
    cache: Cache;
    app: INestApplicationContext;
  }

  /** One "pod": a Nest app on the members (or `host`), in `ns`. */
  async function pod(ns: string, options: K8sCacheOptions = {}): Promise<Pod> {
    const moduleRef = await Test.createTestingModule({
      imports: [
        K8sModule.forRoot({
          cache: { host: members.map((m) => m.id).join(','), namespace: ns, ...options },
        }),
      ],
    }).compile();
    const app = await moduleRef.createNestApplication({ logger: false }).init();
    apps.push(app);
    const service = app.get(CacheService);
    await service.get('warm-up'); // the generation and each member's protocol are known
    return { service, cache: app.get<Cache>(CACHE_MANAGER), app };
  }

  /** `count` pods in one new namespace, one after the other: they share its first generation. */
  async function pods(count: number, options: K8sCacheOptions = {}): Promise<Pod[]> {
    const ns = namespace();
    const fleet: Pod[] = [];
    for (let i = 0; i < count; i++) fleet.push(await pod(ns, options));
    return fleet;
  }

  /** A loader that counts its calls and takes `ms`, or (`ms` a promise) until it settles. */
  function loader<T>(ms: number | Promise<void>, value: (call: number) => T) {
    const counter = {
      calls: 0,
      run: async (): Promise<T> => {
        const call = ++counter.calls;
        await (typeof ms === 'number' ? sleep(ms) : ms);
        return value(call);
      },
    };
    return counter;
  }

  it('runs the function once fleet-wide on a miss: CacheService.wrap and CACHE_MANAGER.wrap alike', async () => {
    const fleet = await pods(4);
    // Slow enough that every call of the test is issued while it runs.
    const load = loader(1_000, (call) => ({ call }));
    // Half the callers go through CacheService, half through CACHE_MANAGER (what the
    // interceptor and users' own code reach).
    const results = await Promise.all(
      fleet.flatMap((p, i) =>
        Array.from({ length: 8 }, () =>
          i % 2 === 0
            ? p.service.wrap('hot', load.run, 60_000)
            : p.cache.wrap('hot', load.run, 60_000),
        ),
      ),
    );
    expect(load.calls).toBe(1);
    expect(results).toEqual(Array(32).fill({ call: 1 }));
    expect(fleet[0].service.stats().pool!.members.map((m) => m.protocol)).toEqual(['meta', 'meta']);

    // The control: without leases each pod runs it once (in-process coalescing only).
    const unleased = await pods(4, { leaseTtl: 0 });
    const again = loader(1_000, (call) => ({ call }));
    await Promise.all(
      unleased.flatMap((p) =>
        Array.from({ length: 8 }, () => p.service.wrap('hot', again.run, 60_000)),
      ),
    );
    expect(again.calls).toBe(4);
  });

  it('a lease holder that dies lets its lease lapse: a waiter takes over within leaseTtl', async () => {
    const leaseTtl = 2_000;
    const [a, b] = await pods(2, { leaseTtl, leaseWait: 20_000 });
    let resolveA!: (value: string) => void;
    const aRunning = new Promise<void>((started) => {
      void a.service
        .wrap(
          'hot',
          () =>
            new Promise<string>((resolve) => {
              resolveA = resolve;
              started();
            }),
          60_000,
        )
        .catch(() => undefined);
    });
    await aRunning;
    // A's process goes away mid-lease: its connections close, its function never finishes.
    await a.app.close();
    const started = Date.now();
    const load = loader(10, () => 'from b');
    expect(await b.service.wrap('hot', load.run, 60_000)).toBe('from b');
    const waited = Date.now() - started;
    expect(load.calls).toBe(1);
    // Bounded by the lease, not by leaseWait (20 s): the lease lapsed and b took it over.
    expect(waited).toBeLessThan(leaseTtl + scaled(1_500));
    resolveA('late');
  });

  it('a lease holder whose function throws gives the lease back: the next caller runs at once', async () => {
    const [a, b] = await pods(2, { leaseTtl: 20_000, leaseWait: 30_000 });
    const failing = a.service.wrap(
      'hot',
      async () => {
        await sleep(200);
        throw new Error('database down');
      },
      60_000,
    );
    await sleep(50); // a holds the lease now
    const started = Date.now();
    const load = loader(10, () => 'from b');
    const fromB = b.service.wrap('hot', load.run, 60_000);
    await expect(failing).rejects.toThrow('database down');
    expect(await fromB).toBe('from b');
    // Long before the 20 s lease would have lapsed.
    expect(Date.now() - started).toBeLessThan(scaled(5_000));
    expect(load.calls).toBe(1);
  });

  it('stale-while-revalidate: past its ttl the value is served at once while one pod refreshes it', async () => {
    const fleet = await pods(3, { staleWhileRevalidate: 10_000 });
    const first = loader(0, () => 'v1');
    const ttl = 1_000;
    const writtenAt = Date.now();
    expect(await fleet[0].service.wrap('k', first.run, ttl)).toBe('v1');
    await sleepUntil(writtenAt + ttl + 50);

    let open!: () => void;
    const refresh = loader(new Promise<void>((resolve) => (open = resolve)), () => 'v2');
    const served = await Promise.all(
      fleet.flatMap((p) => Array.from({ length: 5 }, () => p.service.wrap('k', refresh.run, ttl))),
    );
    // Served while the refresh (held until now) runs: nobody waited for it.
    expect(served).toEqual(Array(15).fill('v1'));
    expect(refresh.calls).toBe(1);
    open();
    const fresh = await waitForValue(
      'the refreshed value',
      () => fleet[2].service.wrap('k', refresh.run, ttl),
      (value) => value === 'v2',
      5_000,
    );
    expect(fresh).toBe('v2');
    expect(refresh.calls).toBe(1);
    // get returns the value until it expires (ttl + staleWhileRevalidate).
    expect(await fleet[1].service.get('k')).toBe('v2');
  });

  it('refreshThreshold is the same mechanism inside the ttl: one background refresh fleet-wide', async () => {
    const fleet = await pods(3, { refreshThreshold: 8_000 });
    const writtenAt = Date.now();
    expect(await fleet[0].service.wrap('k', () => 'v1', 10_000)).toBe('v1');
    await sleepUntil(writtenAt + 2_100); // under 8 s left: in the window
    let open!: () => void;
    const refresh = loader(new Promise<void>((resolve) => (open = resolve)), () => 'v2');
    const served = await Promise.all(
      fleet.flatMap((p) => Array.from({ length: 5 }, () => p.cache.wrap('k', refresh.run, 10_000))),
    );
    expect(served).toEqual(Array(15).fill('v1'));
    expect(refresh.calls).toBe(1);
    open();
    await waitForValue(
      'the refresh',
      () => fleet[1].service.get('k'),
      (v) => v === 'v2',
      5_000,
    );
    expect(refresh.calls).toBe(1);
  });

  it('staleOnDelete: del() is a miss for get, while wrap serves the old value and one caller recomputes', async () => {
    const fleet = await pods(3, { staleOnDelete: 30_000 });
    expect(await fleet[0].service.wrap('k', () => 'old', 60_000)).toBe('old');
    await fleet[1].service.del('k');
    expect(await fleet[2].service.get('k')).toBeUndefined();
    expect(await fleet[2].service.mget(['k'])).toEqual([undefined]);

    const recompute = loader(300, () => 'new');
    const results = await Promise.all(
      fleet.flatMap((p) =>
        Array.from({ length: 4 }, () => p.service.wrap('k', recompute.run, 60_000)),
      ),
    );
    expect(recompute.calls).toBe(1);
    // The caller that recomputed got the new value; everyone else was served the old one at once.
    expect(results.filter((v) => v === 'new').length).toBeGreaterThanOrEqual(1);
    expect(results.filter((v) => v === 'old').length).toBeGreaterThanOrEqual(8);
    expect(await fleet[0].service.get('k')).toBe('new');
  });

  it('a plain get of a value marked stale gives its recompute token back', async () => {
    const [a, b] = await pods(2, { staleOnDelete: 30_000 });
    await a.service.wrap('k', () => 'old', 60_000);
    await a.service.del('k');
    // This read takes memcached's recompute token (the first reader of a stale value gets it)…
    expect(await b.service.get('k')).toBeUndefined();
    // …and hands it back, so wrap still recomputes instead of serving the stale value forever.
    const recompute = loader(10, () => 'new');
    expect(
      await waitForValue(
        'a recompute',
        () => a.service.wrap('k', recompute.run, 60_000),
        (v) => v === 'new',
        5_000,
      ),
    ).toBe('new');
    expect(recompute.calls).toBe(1);
  });

  describe('members without the meta protocol', () => {
    /** A member that claims 1.6.18 but answers `mn` (and every meta command) with ERROR. */
    async function lyingMember(host: string, acceptsNoop: boolean): Promise<HostileMember> {
      const member = await HostileMember.start(host);
      hostile.push(member);
      member.script = (command, honest) => {
        if (command.verb === 'version') return 'VERSION 1.6.18\r\n';
        if (command.verb === 'mn' && acceptsNoop) return 'MN\r\n';
        return honest; // ERROR for mn, mg, ms, md: it has no meta protocol
      };
      return member;
    }

    it('falls back to text on a member that answers meta commands with ERROR; a mixed fleet works', async () => {
      const liar = await lyingMember('127.0.86.20', false);
      const ns = namespace();
      const host = `${members[0].id},${liar.id}`;
      const a = await pod(ns, { host });
      const b = await pod(ns, { host });
      const keys = Array.from({ length: 20 }, (_, i) => `key${i}`);
      for (const key of keys) await a.service.set(key, { key });
      expect(await b.service.mget(keys)).toEqual(keys.map((key) => ({ key })));
      const protocols = Object.fromEntries(
        a.service.stats().pool!.members.map((m) => [m.member, m.protocol]),
      );
      expect(protocols).toEqual({ [members[0].id]: 'meta', [liar.id]: 'text' });
      expect(liar.received.get('mg') ?? 0).toBe(0);
      // wrap still works on both: leases where the owner has them, per-pod coalescing elsewhere.
      const load = loader(100, () => 'v');
      const results = await Promise.all(
        keys.flatMap((key) => [a, b].map((p) => p.service.wrap(`w:${key}`, load.run, 60_000))),
      );
      expect(results).toEqual(Array(40).fill('v'));
      expect(load.calls).toBeGreaterThanOrEqual(20);
      expect(load.calls).toBeLessThan(40);
      expect(a.service.stats().pool!.members.every((m) => m.protocolErrors === 0)).toBe(true);
    });

    it('a member that accepts mn but refuses mg gets text commands for good, the read answered as text', async () => {
      const liar = await lyingMember('127.0.86.21', true);
      const a = await pod(namespace(), { host: liar.id });
      await a.service.set('k', 'v');
      expect(await a.service.get('k')).toBe('v');
      expect(await a.service.wrap('w', () => 'computed', 60_000)).toBe('computed');
      expect(await a.service.get('w')).toBe('computed');
      const [stats] = a.service.stats().pool!.members;
      expect(stats).toMatchObject({ protocol: 'text', protocolErrors: 0, failures: 0 });
      // Refused once (the warm-up read's mg), then text only.
      expect(liar.received.get('mg')).toBe(1);
    });
  });
});
