import Keyv from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemcachedStore } from 'nestjs-k8s';
import type { MemcachedError } from 'nestjs-k8s';
import { startDnsServer } from '../support/dns-server.js';
import type { TestDnsServer } from '../support/dns-server.js';
import {
  freePort,
  memcachedAvailable,
  startMemcached,
  stopAllMemcached,
} from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { activeResources, growth, heapAfterGc, openSockets } from '../support/process-resources.js';
import { quietLogger } from '../support/quiet-logger.js';
import { scaled } from '../support/timing.js';
import { prng, VerifiedLoad } from '../support/verified-load.js';
import { sleep, waitFor } from '../support/wait-for.js';

// This file's loopback range: 127.0.75.x. The churn Kubernetes makes, for a bounded time: the
// DNS answer of a headless Service changes every 1–2 s among 6 members, and members are also
// killed and restarted empty, under a verified load.

const MEMBERS = 6;
const NAME = 'churn.cache.local';
/** How long the churn lasts, in ms. */
const SOAK_MS = scaled(40_000);
/** A member restarted this long ago answers its probe: the ring may not be empty past it. */
const ANSWERS_AFTER_MS = 1_500;

describe.runIf(memcachedAvailable())('churn soak', () => {
  let members: MemcachedProcess[];
  let dns: TestDnsServer;

  beforeAll(async () => {
    // One port on six addresses: a headless Service's A records carry no port.
    const port = await freePort('127.0.75.1');
    members = await Promise.all(
      Array.from({ length: MEMBERS }, (_, i) =>
        startMemcached({ host: `127.0.75.${i + 1}`, port }),
      ),
    );
    dns = await startDnsServer();
  });
  afterAll(async () => {
    await dns?.close();
    await stopAllMemcached();
  });

  it(
    'DNS changing every 1–2 s among 6 members and members restarted empty: 0 stale, 0 wrong, the ring never empty while a listed member answers, hit ratio ≥ 90 %, nothing grows',
    async () => {
      const random = prng(20261208);
      const hosts = members.map((m) => m.host);
      dns.setA(NAME, hosts);
      const store = new MemcachedStore({
        host: NAME,
        port: members[0].port,
        dnsServers: [dns.address],
        refreshInterval: 500,
        minRefreshInterval: 200,
        lookupTimeout: 300,
        retryTimeout: 1_000,
        failureLimit: 2,
        connectTimeout: scaled(1_000),
        commandTimeout: scaled(1_000),
        logger: quietLogger,
      });
      await store.ready();
      const keyv = new Keyv({ store, namespace: 'churn' });
      // Anything that may cost an entry excuses a miss right after a set (not a wrong value).
      let costly = 0;
      store.on('error', (_error: MemcachedError) => costly++);
      store.on('members', () => costly++);
      store.on('readmit', () => costly++);
      const load = new VerifiedLoad(keyv, {
        workers: 16,
        keys: 1_000,
        failures: () => costly,
        maxPadding: 2_000,
        maxOpsPerWorker: 1_000_000,
      });

      // Calm: every key written, then what the process holds is the baseline.
      await load.run(scaled(3_000));
      const calmTotal = { ...load.total };
      const heapBefore = heapAfterGc();
      const socketsBefore = openSockets();
      const resourcesBefore = activeResources();

      // The churn: DNS answers and restarts on their own schedules, sampled every 200 ms.
      const startedAt = new Map(members.map((m) => [m, 0]));
      const dead = new Set<MemcachedProcess>();
      let listed = hosts;
      let dnsChanges = 0;
      let restarts = 0;
      const samples = { total: 0, empty: 0, emptyWhileAnswering: 0 };
      const deadline = Date.now() + SOAK_MS;
      const churn = (async () => {
        let nextRestart = Date.now() + 3_000;
        while (Date.now() < deadline) {
          await sleep(1_000 + Math.floor(random() * 1_000));
          const size = 2 + Math.floor(random() * (MEMBERS - 1));
          listed = [...hosts].sort(() => random() - 0.5).slice(0, size);
          dns.setA(NAME, listed);
          dnsChanges++;
          if (Date.now() >= nextRestart) {
            const victim = members[Math.floor(random() * MEMBERS)];
            dead.add(victim);
            victim.kill('SIGKILL');
            await sleep(500);
            await victim.restart();
            startedAt.set(victim, Date.now());
            dead.delete(victim);
            restarts++;
            nextRestart = Date.now() + 4_000 + Math.floor(random() * 3_000);
          }
        }
      })();
      const sampler = (async () => {
        while (Date.now() < deadline) {
          await sleep(200);
          samples.total++;
          if (store.stats().ring.length > 0) continue;
          samples.empty++;
          const now = Date.now();
          const answering = members.filter(
            (m) =>
              store.servers().includes(m.id) &&
              !dead.has(m) &&
              now - startedAt.get(m)! > ANSWERS_AFTER_MS,
          );
          if (answering.length > 0) samples.emptyWhileAnswering++;
        }
      })();
      const soak = await load.run(SOAK_MS);
      await Promise.all([churn, sampler]);

      // After the churn: every member listed again, the process holds what it held before.
      dns.setA(NAME, hosts);
      await waitFor('all six back', () => store.stats().ring.length === MEMBERS, scaled(10_000));
      await load.run(scaled(1_000));
      const heapGrowth = heapAfterGc() - heapBefore;
      const hitRatio = soak.hits / soak.verified;
      console.info(
        `churn soak ${SOAK_MS / 1000} s: ${dnsChanges} DNS changes, ${restarts} restarts, ` +
          `${soak.ops} operations (${soak.sets} sets, ${soak.setsFailed} failed), ${soak.verified} ` +
          `values verified, hit ratio ${(hitRatio * 100).toFixed(1)} %, ${soak.stale} stale, ` +
          `${soak.wrong} wrong, ${soak.lost} lost, ${soak.rejected} rejected, ring empty in ` +
          `${samples.empty} of ${samples.total} samples (${samples.emptyWhileAnswering} while a ` +
          `listed member answered), ${store.stats().invalidations} keys cleared on new owners, ` +
          `heap ${(heapGrowth / 1e6).toFixed(1)} MB, calm before: ${calmTotal.verified} verified`,
      );
      expect(load.wrongSamples).toEqual([]);
      expect(soak.stale).toBe(0);
      expect(soak.wrong).toBe(0);
      expect(soak.rejected).toBe(0);
      expect(samples.emptyWhileAnswering).toBe(0);
      expect(hitRatio).toBeGreaterThanOrEqual(0.9);
      // It did churn: members moved, restarted, and keys had to be cleared.
      expect(dnsChanges).toBeGreaterThanOrEqual(SOAK_MS / 2_000 - 1);
      expect(restarts).toBeGreaterThanOrEqual(3);
      expect(store.stats().invalidations).toBeGreaterThan(0);
      expect(soak.verified).toBeGreaterThan(10_000);
      // Nothing grows: heap (after a full collection), sockets, timers.
      expect(heapGrowth).toBeLessThan(10_000_000);
      expect(openSockets()).toBeLessThanOrEqual(socketsBefore);
      expect(growth(resourcesBefore, activeResources())).toEqual([]);

      await store.disconnect();
    },
    SOAK_MS + scaled(60_000),
  );
});
