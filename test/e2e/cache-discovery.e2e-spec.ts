import { Injectable, Module } from '@nestjs/common';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CacheService, K8S_MEMCACHED_STORE, K8sModule } from 'nestjs-k8s';
import type { K8sCacheOptions, MemcachedStore } from 'nestjs-k8s';
import { startDnsServer } from '../support/dns-server.js';
import type { TestDnsServer } from '../support/dns-server.js';
import {
  freePort,
  memcachedAvailable,
  startMemcached,
  stopAllMemcached,
} from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { waitFor } from '../support/wait-for.js';
import { scaled } from '../support/timing.js';

// This file's loopback range: 127.0.5.x. One port for every member, as a headless Service gives.
const NAME = 'memcached.cache.svc.cluster.local';
const REFRESH_MS = 1_000;
const KEYS = Array.from({ length: 3_000 }, (_, i) => `user:${i}:profile`);

@Injectable()
class Probe {
  constructor(readonly cache: CacheService) {}
}
@Module({ providers: [Probe] })
class ProbeModule {}

/** Items each server holds, asked of the server itself. */
async function itemsOn(servers: MemcachedProcess[]): Promise<number[]> {
  return Promise.all(servers.map(async (s) => Number((await s.stats()).curr_items)));
}

describe.runIf(memcachedAvailable())('CacheService on a pool discovered from DNS', () => {
  let dns: TestDnsServer;
  let port: number;
  let servers: MemcachedProcess[];
  let app: INestApplication;
  let cache: CacheService;
  const ids = (xs: MemcachedProcess[]) => xs.map((s) => s.id).sort();

  async function boot(options: K8sCacheOptions): Promise<INestApplication> {
    const moduleRef = await Test.createTestingModule({
      imports: [K8sModule.forRoot({ isGlobal: true, cache: options }), ProbeModule],
    }).compile();
    const nest = moduleRef.createNestApplication({ logger: false });
    await nest.init();
    return nest;
  }

  beforeAll(async () => {
    dns = await startDnsServer();
  });

  // A fresh pool of four members (DNS naming three) and a fresh app for each test: tests kill
  // members, change the records and fill the members.
  beforeEach(async () => {
    port = await freePort('127.0.5.1');
    servers = await Promise.all(
      [1, 2, 3, 4].map((i) => startMemcached({ host: `127.0.5.${i}`, port })),
    );
    dns.setA(
      NAME,
      servers.slice(0, 3).map((s) => s.host),
    );
    app = await boot({
      host: NAME,
      port,
      dnsServers: [dns.address],
      refreshInterval: REFRESH_MS,
      minRefreshInterval: 200,
      failureLimit: 2,
      retryTimeout: 60_000,
      // Generous: the killed member fails at once (refused), a live one must never look late.
      commandTimeout: scaled(2_000),
      connectTimeout: scaled(1_000),
    });
    cache = app.get(Probe).cache;
  });

  afterEach(async () => {
    await app?.close();
    dns.setSilent(false);
    await stopAllMemcached();
  });

  afterAll(async () => {
    await dns?.close();
  });

  /** Write every key (through the pool DNS names). */
  async function writeAll(): Promise<void> {
    for (let i = 0; i < KEYS.length; i += 300) {
      await cache.mset(KEYS.slice(i, i + 300).map((key) => ({ key, value: { key } })));
    }
  }

  it('spreads 3,000 keys over the 3 members DNS names, each holding 20–47 %', async () => {
    expect(cache.servers()).toEqual(ids(servers.slice(0, 3)));
    await writeAll();
    // Without a namespace option the keys live under Keyv's default one, 'keyv'.
    for (const server of servers.slice(0, 3)) {
      expect(await server.command('get keyv:~gen\r\n', (r) => r.endsWith('END\r\n'))).toMatch(
        /^VALUE keyv:~gen /,
      );
    }
    const counts = await itemsOn(servers.slice(0, 3));
    // Every key landed somewhere (plus the namespace generation key on one member).
    expect(counts.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(KEYS.length);
    for (const count of counts) {
      expect(count / KEYS.length).toBeGreaterThanOrEqual(0.2);
      expect(count / KEYS.length).toBeLessThanOrEqual(0.47);
    }
  });

  it('takes a 4th member added in DNS within one refreshInterval; re-reading misses at most 35 %', async () => {
    await writeAll();
    dns.setA(
      NAME,
      servers.map((s) => s.host),
    );
    // Within one refresh period, plus a lookup's worth of slack.
    await waitFor('the 4th member', () => cache.servers().length === 4, REFRESH_MS + 500);
    expect(cache.servers()).toEqual(ids(servers));

    const values = await cache.mget<{ key: string }>(KEYS);
    const misses = values.filter((v) => v === undefined).length;
    expect(misses / KEYS.length).toBeLessThanOrEqual(0.35);
    // The hits are the right values, not someone else's.
    values.forEach((v, i) => v && expect(v.key).toBe(KEYS[i]));

    // The new member takes traffic: writes of the missed keys land on it.
    const missed = KEYS.filter((_, i) => values[i] === undefined);
    await cache.mset(missed.map((key) => ({ key, value: { key } })));
    const [fourth] = await itemsOn([servers[3]]);
    expect(fourth).toBeGreaterThanOrEqual(missed.length * 0.9);
  });

  it('keeps serving when a member is killed under load; its keys move; DNS dropping it drops it', async () => {
    const victim = servers[1];
    const store = app.get<MemcachedStore>(K8S_MEMCACHED_STORE);
    const ejected = new Promise<string>((resolve) => store.once('eject', resolve));
    const errors: unknown[] = [];
    let ops = 0;
    let stop = false;
    // 32 callers until told to stop, each bounded by count.
    const worker = async (w: number) => {
      for (let i = 0; i < 200_000 && !stop; i++) {
        const key = KEYS[(w * 97 + i) % KEYS.length];
        try {
          if (i % 4 === 0) await cache.set(key, { key });
          else await cache.get(key);
          ops++;
        } catch (error) {
          errors.push(error);
        }
      }
    };
    const load = Promise.all(Array.from({ length: 32 }, (_, w) => worker(w)));
    await waitFor('the load to start', () => ops > 1_000, 5_000);
    victim.kill('SIGKILL');
    const deadline = new Promise<string>((_, reject) =>
      setTimeout(() => reject(new Error('no eject within 10 s')), scaled(10_000)).unref(),
    );
    const ejectedId = await Promise.race([ejected, deadline]).finally(() => (stop = true));
    await load;
    expect(ejectedId).toBe(victim.id);
    expect(errors).toEqual([]);

    // It was ejected from the ring (not from the member list: DNS still names it)...
    const { pool } = cache.stats();
    expect(pool?.ring).not.toContain(victim.id);
    expect(pool?.members.find((m) => m.member === victim.id)?.ejectedUntil).toBeGreaterThan(
      Date.now(),
    );
    // ...so its keys are written to and read from the surviving members.
    await cache.mset(KEYS.slice(0, 600).map((key) => ({ key, value: { key, again: true } })));
    const back = await cache.mget<{ key: string; again: boolean }>(KEYS.slice(0, 600));
    expect(back.every((v, i) => v?.key === KEYS[i] && v.again)).toBe(true);

    // Still a member until DNS says otherwise (it may only be restarting)...
    expect(cache.servers()).toContain(victim.id);
    dns.setA(
      NAME,
      servers.filter((s) => s !== victim).map((s) => s.host),
    );
    await waitFor(
      'the dead member to leave',
      () => !cache.servers().includes(victim.id),
      3 * REFRESH_MS,
    );
    expect(cache.servers()).toEqual(ids(servers.filter((s) => s !== victim)));
  });

  it('keeps the member list when DNS answers NXDOMAIN, nothing, or not at all', async () => {
    const before = cache.servers();
    expect(before.length).toBe(3);
    const asked = () => dns.queryCount(NAME, 'A');
    for (const trouble of [
      () => dns.setNxdomain(NAME),
      () => dns.setEmpty(NAME),
      () => dns.setSilent(true),
    ]) {
      trouble();
      const queries = asked();
      await cache.refresh();
      expect(asked()).toBeGreaterThan(queries); // DNS was asked...
      expect(cache.servers()).toEqual(before); // ...and its answer changed nothing.
    }
    // A health check sees the stale list for what it is.
    expect(cache.stats().pool?.discovery).toMatchObject({ healthy: false });
    expect(cache.stats().pool?.discovery?.lastError).toMatch(/timed out|timeout/i);
    dns.setSilent(false);
    // The pool still works on the kept list.
    await cache.set('after-dns-trouble', 'ok');
    expect(await cache.get('after-dns-trouble')).toBe('ok');
  });

  it('uses the ports of SRV answers', async () => {
    const a = await startMemcached({ host: '127.0.5.10' });
    const b = await startMemcached({ host: '127.0.5.11' });
    expect(a.port).not.toBe(b.port);
    dns.setA('mc-0.mc.local', [a.host]);
    dns.setA('mc-1.mc.local', [b.host]);
    dns.setSrv('_memcache._tcp.mc.local', [
      { target: 'mc-0.mc.local', port: a.port },
      { target: 'mc-1.mc.local', port: b.port },
    ]);
    const srvApp = await boot({ host: '_memcache._tcp.mc.local', dnsServers: [dns.address] });
    try {
      const srvCache = srvApp.get(Probe).cache;
      expect(srvCache.servers()).toEqual([a.id, b.id].sort());
      await srvCache.mset(KEYS.slice(0, 200).map((key) => ({ key, value: 1 })));
      const [onA, onB] = await itemsOn([a, b]);
      expect(onA).toBeGreaterThan(0);
      expect(onB).toBeGreaterThan(0);
    } finally {
      await srvApp.close();
    }
  });
});
