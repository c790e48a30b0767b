import type { INestApplication, LoggerService } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type Keyv from 'keyv';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CacheService, K8S_MEMCACHED_STORE, K8sModule, MemcachedStore } from 'nestjs-k8s';
import type { K8sCacheOptions } from 'nestjs-k8s';
import { K8S_CACHE_KEYV } from '../../lib/cache/cache.constants.js';
import type { EndpointBehaviour, TestConfigEndpoint } from '../support/elasticache-endpoint.js';
import {
  freePort,
  memcachedAvailable,
  startMemcached,
  stopAllMemcached,
} from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { listedByIp, startDiscoveryEndpoint } from '../support/memorystore-endpoint.js';
import { quietLogger } from '../support/quiet-logger.js';
import { scaled } from '../support/timing.js';
import { VerifiedLoad } from '../support/verified-load.js';
import { sleep, waitFor } from '../support/wait-for.js';

// This file's loopback range: 127.0.126.x (nodes .1–.4, discovery endpoints from .10, a plain
// memcached at .30). Memorystore itself cannot run here: the discovery endpoint is simulated
// following Google's documentation (test/support/memorystore-endpoint.ts), the nodes behind it
// are real memcached processes.

const REFRESH_MS = 300;
const COMMAND_TIMEOUT = 500;
/** Wall-clock bound of each load phase, in ms (operations per worker are bounded too). */
const PHASE_MS = 1_500;

/** Log lines by level. */
class RecordingLogger implements LoggerService {
  readonly lines: Array<[string, string]> = [];
  log = (m: string) => void this.lines.push(['log', m]);
  warn = (m: string) => void this.lines.push(['warn', m]);
  error = (m: string) => void this.lines.push(['error', m]);
  debug = (m: string) => void this.lines.push(['debug', m]);
  at = (level: string) => this.lines.filter(([l]) => l === level).map(([, m]) => m);
}

describe.runIf(memcachedAvailable())('Memorystore auto discovery with real memcached nodes', () => {
  let nodes: MemcachedProcess[];
  const apps: INestApplication[] = [];
  const stores: MemcachedStore[] = [];
  const endpoints: TestConfigEndpoint[] = [];
  let endpointCounter = 10;
  let namespaceCounter = 0;

  async function discoveryEndpoint(listed: readonly MemcachedProcess[]) {
    const endpoint = await startDiscoveryEndpoint({ host: `127.0.126.${endpointCounter++}` });
    endpoint.setNodes(listed.map(listedByIp));
    endpoints.push(endpoint);
    return endpoint;
  }

  /** An app of its own following a discovery endpoint of its own that lists `initial`. */
  async function boot(initial: MemcachedProcess[], options: Partial<K8sCacheOptions> = {}) {
    const endpoint = await discoveryEndpoint(initial);
    const moduleRef = await Test.createTestingModule({
      imports: [
        K8sModule.forRoot({
          cache: {
            discovery: 'memorystore',
            host: endpoint.address,
            namespace: `ms${++namespaceCounter}`,
            refreshInterval: REFRESH_MS,
            minRefreshInterval: 100,
            lookupTimeout: 1_000,
            commandTimeout: COMMAND_TIMEOUT,
            ...options,
          },
        }),
      ],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    apps.push(app);
    const store = app.get<MemcachedStore>(K8S_MEMCACHED_STORE);
    const errors: unknown[] = [];
    store.on('error', (error) => errors.push(error));
    return {
      endpoint,
      store,
      errors,
      cache: app.get(CacheService),
      keyv: app.get<Keyv>(K8S_CACHE_KEYV),
    };
  }

  const ids = (servers: readonly MemcachedProcess[]) => servers.map((s) => s.id).sort();

  beforeAll(async () => {
    // One port for every node, as Memorystore gives them.
    const port = await freePort('127.0.126.1');
    nodes = await Promise.all(
      [1, 2, 3, 4].map((i) => startMemcached({ host: `127.0.126.${i}`, port })),
    );
  });

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
    await Promise.all(stores.splice(0).map((store) => store.disconnect()));
    await Promise.all(endpoints.splice(0).map((e) => e.close()));
  });

  afterAll(async () => {
    await stopAllMemcached();
  });

  it('follows 3 → 4 → 3 nodes under load, by IP; the discovery endpoint is asked nothing but config get cluster', async () => {
    // The scale-down comes within the warm-up period of the scale-up (see elasticache.e2e-spec).
    const { endpoint, store, errors, cache, keyv } = await boot(nodes.slice(0, 3), {
      warmupPeriod: 30_000,
    });
    expect(cache.servers()).toEqual(ids(nodes.slice(0, 3)));
    let removed = 0;
    const changedAt: number[] = [];
    store.on('members', (_, diff) => {
      removed += diff.removed.length;
      changedAt.push(Date.now());
    });
    const load = new VerifiedLoad(keyv, {
      workers: 32,
      keys: 5_000,
      // A node leaving takes its entries along: a read after that may miss.
      failures: () => errors.length + removed,
      maxPadding: 2_000,
    });
    const sets = () => Promise.all(nodes.map(async (n) => Number((await n.stats()).cmd_set)));
    const setsBefore = await sets();

    const growing = load.run(PHASE_MS);
    endpoint.setNodes(nodes.map(listedByIp));
    const grow = await growing;
    const growEnded = Date.now();
    expect(cache.servers()).toEqual(ids(nodes));

    const shrinking = load.run(PHASE_MS);
    endpoint.setNodes(nodes.slice(0, 3).map(listedByIp));
    const shrink = await shrinking;
    expect(cache.servers()).toEqual(ids(nodes.slice(0, 3)));
    expect(removed).toBe(1);

    // Each change was applied while its phase's load was running.
    expect(changedAt).toHaveLength(2);
    expect(changedAt[0]).toBeLessThan(growEnded);
    expect(changedAt[1]).toBeGreaterThan(growEnded);
    expect(load.wrongSamples).toEqual([]);
    for (const phase of [grow, shrink]) {
      expect(phase.verified).toBeGreaterThan(0);
      expect({ rejected: phase.rejected, wrong: phase.wrong, lost: phase.lost }).toEqual({
        rejected: 0,
        wrong: 0,
        lost: 0,
      });
    }
    expect(errors).toEqual([]);
    // Every node, the added one too, was written to, each at its own IP.
    const setsAfter = await sets();
    expect(setsAfter.every((count, i) => count > setsBefore[i])).toBe(true);
    // The discovery endpoint was polled, and asked nothing else: no data, no ElastiCache command.
    expect(endpoint.requests('config')).toBeGreaterThanOrEqual(3);
    expect([endpoint.requests('get'), endpoint.requests('other')]).toEqual([0, 0]);
    expect(store.stats().discovery).toMatchObject({ healthy: true, configVersion: 3 });
  });

  it('ignores a version that goes back, logging it once, and applies the next higher one', async () => {
    const endpoint = await discoveryEndpoint(nodes.slice(0, 3));
    const logger = new RecordingLogger();
    const store = new MemcachedStore({
      discovery: 'memorystore',
      host: endpoint.address,
      refreshInterval: 0,
      logger,
    });
    stores.push(store);
    await store.ready();
    expect(store.servers()).toEqual(ids(nodes.slice(0, 3)));

    endpoint.setNodes(nodes.map(listedByIp), 5);
    await store.refresh();
    expect(store.servers()).toEqual(ids(nodes));
    // Eventually consistent (Google): another answer can be older. Two polls, one warning.
    endpoint.setNodes(nodes.slice(0, 2).map(listedByIp), 4);
    await store.refresh();
    await store.refresh();
    expect(store.servers()).toEqual(ids(nodes));
    expect(store.stats().discovery).toMatchObject({
      configVersion: 5,
      staleConfigs: 2,
      healthy: true,
    });
    expect(logger.at('warn')).toEqual([
      expect.stringMatching(
        /Memorystore discovery endpoint 127\.0\.126\.\d+:\d+ answered version 4, older than the 5 in use: ignored/,
      ),
    ]);

    endpoint.setNodes(nodes.slice(0, 2).map(listedByIp), 6);
    await store.refresh();
    expect(store.servers()).toEqual(ids(nodes.slice(0, 2)));
  });

  describe('a discovery endpoint in trouble never empties the pool', () => {
    const troubles: Array<[string, (e: TestConfigEndpoint) => Promise<void> | void, RegExp]> = [
      ['down', (e) => e.down(), /connection failed \(ECONNREFUSED\)/],
      ['silent', (e) => e.behave({ kind: 'silent' }), /no complete answer .* within 1000 ms/],
      [
        'answering garbage',
        (e) =>
          e.behave({
            kind: 'raw',
            bytes: framed('nine\n10.0.0.1|10.0.0.1|11211\n'),
          } satisfies EndpointBehaviour),
        /not a whole number/,
      ],
      ['listing no nodes', (e) => e.setNodes([]), /lists no nodes/],
    ];

    it.each(troubles)('when it is %s, under load', async (_, trouble, reason) => {
      const { endpoint, store, errors, cache, keyv } = await boot(nodes.slice(0, 3));
      const members = cache.servers();
      const load = new VerifiedLoad(keyv, {
        workers: 16,
        keys: 2_000,
        failures: () => errors.length,
        maxPadding: 1_000,
      });
      const failuresBefore = store.stats().discovery!.failures;
      await trouble(endpoint);
      const running = load.run(PHASE_MS);
      // Positive control: failed polls were seen during the load, so the list had its chances to go.
      await waitFor(
        'two failed discovery queries',
        () => store.stats().discovery!.failures >= failuresBefore + 2,
        10_000,
      );
      await running;
      expect(cache.servers()).toEqual(members);
      expect(store.stats().discovery).toMatchObject({ healthy: false, configVersion: 1 });
      expect(store.stats().discovery!.lastError).toMatch(reason);
      expect({
        rejected: load.total.rejected,
        wrong: load.total.wrong,
        lost: load.total.lost,
      }).toEqual({ rejected: 0, wrong: 0, lost: 0 });
      expect(load.total.hits).toBeGreaterThan(0);
      expect(errors).toEqual([]);
    });
  });

  it('keeps serving while a node is killed and restarted under load: no call held past its timeouts, no wrong value', async () => {
    const { store, errors, cache, keyv } = await boot(nodes.slice(0, 3), {
      connectTimeout: COMMAND_TIMEOUT,
      retryTimeout: 300,
    });
    const victim = nodes[2];
    const load = new VerifiedLoad(keyv, {
      workers: 16,
      keys: 2_000,
      // A restarted node comes back empty, and a readmission may start a new generation.
      failures: () => errors.length + store.stats().totals.readmissions,
      maxPadding: 1_000,
    });
    const running = load.run(3 * PHASE_MS);
    await sleep(PHASE_MS / 3);
    await victim.stop();
    await waitFor('the node to be ejected', () => store.stats().totals.ejections > 0, 10_000);
    await victim.restart();
    await waitFor('the node to be re-admitted', () => store.stats().ring.length === 3, 10_000);
    const phase = await running;
    expect(cache.servers()).toEqual(ids(nodes.slice(0, 3)));
    expect(phase.verified).toBeGreaterThan(0);
    expect(load.wrongSamples).toEqual([]);
    expect({ rejected: phase.rejected, wrong: phase.wrong, lost: phase.lost }).toEqual({
      rejected: 0,
      wrong: 0,
      lost: 0,
    });
    // A set waits for the namespace generation, then for its own command: two command timeouts.
    expect(phase.maxLatencyMs).toBeLessThan(scaled(2 * COMMAND_TIMEOUT + 500));
    // Positive control: the node's failures were seen.
    expect(errors.length).toBeGreaterThan(0);
  });

  it('refuses a memcached node given as the discovery endpoint, naming the fix, and never sends it another command', async () => {
    const plain = await startMemcached({ host: '127.0.126.30' });
    const before = await plain.stats();
    const store = new MemcachedStore({
      discovery: 'memorystore',
      host: plain.id,
      refreshInterval: 0,
      logger: quietLogger,
    });
    stores.push(store);
    await store.ready();
    expect(store.servers()).toEqual([]);
    expect(store.stats().discovery?.lastError).toMatch(
      /Memorystore discovery endpoint 127\.0\.126\.30:\d+: answered ERROR to "config get cluster": it is a memcached node, not the instance's discovery endpoint/,
    );
    // Not even the ElastiCache fallback (`get AmazonElastiCache:cluster`) was sent.
    const after = await plain.stats();
    expect(after.cmd_get).toBe(before.cmd_get);
  });
});

/** A `config get cluster` reply around `data`, framed as documented (correct byte count). */
function framed(data: string): string {
  return `CONFIG cluster 0 ${Buffer.byteLength(data)}\r\n${data}\r\nEND\r\n`;
}
