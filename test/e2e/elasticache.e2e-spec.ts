import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type Keyv from 'keyv';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CacheService, K8S_MEMCACHED_STORE, K8sModule, MemcachedStore } from 'nestjs-k8s';
import type { K8sCacheOptions } from 'nestjs-k8s';
import { K8S_CACHE_KEYV } from '../../lib/cache/cache.constants.js';
import { startConfigEndpoint } from '../support/elasticache-endpoint.js';
import type {
  ConfigNode,
  EndpointBehaviour,
  TestConfigEndpoint,
} from '../support/elasticache-endpoint.js';
import {
  freePort,
  memcachedAvailable,
  rawGet,
  rawGetMany,
  startMemcached,
  stopAllMemcached,
} from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { findBinary, serviceAvailable } from '../support/services.js';
import { makeTestCertificates } from '../support/test-certificates.js';
import type { TestCertificates } from '../support/test-certificates.js';
import { VerifiedLoad } from '../support/verified-load.js';
import { quietLogger } from '../support/quiet-logger.js';
import { waitFor } from '../support/wait-for.js';

// This file's loopback range: 127.0.25.x (nodes .1–.4, configuration endpoints from .10).
const REFRESH_MS = 300;
const KEYS = Array.from({ length: 2_000 }, (_, i) => `user:${i}`);
/** Wall-clock bound of each load phase, in ms (operations per worker are bounded too). */
const PHASE_MS = 1_500;

/**
 * A node as the configuration lists it. The host name is the node's IP for now: the pool
 * connects to `host` until it honours `Member.address` (then: `node-N.mycluster…` names).
 */
const listed = (server: MemcachedProcess): ConfigNode => ({
  host: server.host,
  ip: server.host,
  port: server.port,
});

/** For each key, the index in `servers` of the one holding it with a value containing `marker`. */
async function holders(
  servers: readonly MemcachedProcess[],
  namespace: string,
  marker: string,
): Promise<Array<number | undefined>> {
  const token = await rawGet(servers[0], `${namespace}:~gen`);
  const found = new Map<string, number>();
  const raw = (key: string) => `${namespace}:${token}:${key}`;
  for (const [index, server] of servers.entries()) {
    const values = await rawGetMany(server, KEYS.map(raw));
    for (const key of KEYS) if (values.get(raw(key))?.includes(marker)) found.set(key, index);
  }
  return KEYS.map((key) => found.get(key));
}

describe.runIf(memcachedAvailable())('ElastiCache auto discovery with real memcached nodes', () => {
  let servers: MemcachedProcess[];
  const apps: INestApplication[] = [];
  const endpoints: TestConfigEndpoint[] = [];
  let endpointCounter = 10;
  let namespaceCounter = 0;

  /** An app of its own following an endpoint of its own that lists `initial`. */
  async function boot(initial: MemcachedProcess[], options: Partial<K8sCacheOptions> = {}) {
    const endpoint = await startConfigEndpoint({ host: `127.0.25.${endpointCounter++}` });
    endpoint.setNodes(initial.map(listed));
    endpoints.push(endpoint);
    const namespace = `ec${++namespaceCounter}`;
    const moduleRef = await Test.createTestingModule({
      imports: [
        K8sModule.forRoot({
          cache: {
            discovery: 'elasticache',
            host: endpoint.address,
            namespace,
            refreshInterval: REFRESH_MS,
            minRefreshInterval: 100,
            lookupTimeout: 1_000,
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
      namespace,
      store,
      errors,
      cache: app.get(CacheService),
      keyv: app.get<Keyv>(K8S_CACHE_KEYV),
    };
  }

  beforeAll(async () => {
    // One port for every node, as ElastiCache gives them.
    const port = await freePort('127.0.25.1');
    servers = await Promise.all(
      [1, 2, 3, 4].map((i) => startMemcached({ host: `127.0.25.${i}`, port })),
    );
  });

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
    await Promise.all(endpoints.splice(0).map((e) => e.close()));
  });

  afterAll(async () => {
    await stopAllMemcached();
  });

  it("follows 3 → 4 → 3 nodes under load: no error, no wrong value, no lost write but the removed node's", async () => {
    // The scale-down comes within the warm-up period of the scale-up: the keys the removed node
    // held are then found at their previous owners. (Rewritten keys are never read older either
    // way: their previous owners' copies are cleared when the node leaves — churn.e2e-spec.)
    const { endpoint, store, errors, cache, keyv } = await boot(servers.slice(0, 3), {
      warmupPeriod: 30_000,
    });
    expect(cache.servers()).toEqual(
      servers
        .slice(0, 3)
        .map((s) => s.id)
        .sort(),
    );
    // A node leaving the configuration takes its entries along: a read after that misses.
    let removed = 0;
    const changedAt: number[] = [];
    store.on('members', (_, diff) => {
      removed += diff.removed.length;
      changedAt.push(Date.now());
    });
    const load = new VerifiedLoad(keyv, {
      workers: 32,
      keys: 5_000,
      failures: () => errors.length + removed,
      maxPadding: 2_000,
    });

    const growing = load.run(PHASE_MS);
    endpoint.setNodes(servers.map(listed));
    const grow = await growing;
    const growEnded = Date.now();
    expect(cache.servers()).toHaveLength(4);

    const shrinking = load.run(PHASE_MS);
    endpoint.setNodes(servers.slice(0, 3).map(listed));
    const shrink = await shrinking;
    const shrinkEnded = Date.now();
    expect(cache.servers()).toEqual(
      servers
        .slice(0, 3)
        .map((s) => s.id)
        .sort(),
    );
    expect(removed).toBe(1);

    // Each change was applied while its phase's load was running.
    expect(changedAt).toHaveLength(2);
    expect(changedAt[0]).toBeLessThan(growEnded);
    expect(changedAt[1]).toBeGreaterThan(growEnded);
    expect(changedAt[1]).toBeLessThan(shrinkEnded);
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
    expect(store.stats().discovery).toMatchObject({ healthy: true, configVersion: 3 });
  });

  it('moves keys only to the node added, and back from it when it leaves', async () => {
    // No warm-up: copies would blur where each key lives.
    const { endpoint, namespace, cache } = await boot(servers.slice(0, 3), { warmupPeriod: 0 });
    const writeAll = async (marker: string) => {
      for (let i = 0; i < KEYS.length; i += 250) {
        await cache.mset(KEYS.slice(i, i + 250).map((key) => ({ key, value: `${marker}|${key}` })));
      }
    };
    await writeAll('three');
    const before = await holders(servers, namespace, 'three');
    expect(before.every((h) => h !== undefined && h < 3)).toBe(true);

    endpoint.setNodes(servers.map(listed));
    await waitFor('the 4th node', () => cache.servers().length === 4, 10 * REFRESH_MS);
    await writeAll('four');
    const during = await holders(servers, namespace, 'four');
    const moved = KEYS.filter((_, i) => during[i] !== before[i]);
    // Only to the new node, and about a quarter of the keys (ketama: 25 % ideal).
    expect(moved.every((key) => during[KEYS.indexOf(key)] === 3)).toBe(true);
    expect(moved.length / KEYS.length).toBeGreaterThan(0.12);
    expect(moved.length / KEYS.length).toBeLessThan(0.38);

    endpoint.setNodes(servers.slice(0, 3).map(listed));
    await waitFor('the 4th node to leave', () => cache.servers().length === 3, 10 * REFRESH_MS);
    await writeAll('back');
    // Every key is where it was with three nodes: only the removed node's keys moved.
    expect(await holders(servers, namespace, 'back')).toEqual(before);
  });

  it('asks the endpoint again soon after a node fails, long before the periodic poll', async () => {
    const doomed = await startMemcached({ host: '127.0.25.5' });
    const { endpoint, cache } = await boot([servers[0], servers[1], doomed], {
      refreshInterval: 600_000,
    });
    expect(endpoint.requests('config')).toBe(1);
    // ElastiCache replaced the node: the configuration drops it, and the node is gone.
    endpoint.setNodes([servers[0], servers[1]].map(listed));
    await doomed.stop();
    // Reads of keys the dead node owned fail at the connection level and ask for a refresh.
    const reads = (async () => {
      for (let i = 0; i < 2_000 && cache.servers().length === 3; i++) {
        await cache.get(KEYS[i % KEYS.length]);
      }
    })();
    await waitFor('the dead node to leave', () => cache.servers().length === 2, 10_000);
    await reads;
    expect(endpoint.requests('config')).toBeGreaterThanOrEqual(2);
    expect(cache.servers()).toEqual([servers[0].id, servers[1].id].sort());
  });

  // Node names are host names here, as
  // ElastiCache gives them; each node's IP is where the pool connects.
  it("keeps a node's keys in place when its IP changes under the same host name", async () => {
    const named = (name: string, server: MemcachedProcess): ConfigNode => ({
      host: `${name}.mycluster.abc123.cache.amazonaws.com`,
      ip: server.host,
      port: server.port,
    });
    const { endpoint, namespace, cache } = await boot([], { warmupPeriod: 0 });
    endpoint.setNodes([named('n1', servers[0]), named('n2', servers[1]), named('n3', servers[2])]);
    await cache.refresh();
    expect(cache.servers()).toHaveLength(3);
    const writeAll = async (marker: string) => {
      for (let i = 0; i < KEYS.length; i += 250) {
        await cache.mset(KEYS.slice(i, i + 250).map((key) => ({ key, value: `${marker}|${key}` })));
      }
    };
    await writeAll('before');
    const before = await holders(servers, namespace, 'before');
    const ids = cache.servers();

    // n2 is replaced: same host name, the IP of another machine (servers[3], empty).
    endpoint.setNodes([named('n1', servers[0]), named('n2', servers[3]), named('n3', servers[2])]);
    await cache.refresh();
    expect(cache.servers()).toEqual(ids); // same identities: same ring
    await writeAll('after');
    const after = await holders(servers, namespace, 'after');
    // Exactly n2's keys now live on the new machine; every other key stayed where it was.
    KEYS.forEach((_, i) => expect(after[i]).toBe(before[i] === 1 ? 3 : before[i]));
    expect(after.filter((h) => h === 3).length).toBeGreaterThan(KEYS.length * 0.15);
  });

  describe('an endpoint in trouble never empties the pool', () => {
    const troubles: Array<[string, (e: TestConfigEndpoint) => Promise<void> | void]> = [
      ['down', (e) => e.down()],
      ['silent', (e) => e.behave({ kind: 'silent' } satisfies EndpointBehaviour)],
      ['garbage', (e) => e.behave({ kind: 'raw', bytes: 'VALUE x 0 5\r\nhello\r\nEND\r\n' })],
      ['listing no nodes', (e) => e.setNodes([])],
    ];

    it.each(troubles)('when it is %s, under load', async (_, trouble) => {
      const { endpoint, store, errors, cache, keyv } = await boot(servers.slice(0, 3));
      const members = cache.servers();
      const load = new VerifiedLoad(keyv, {
        workers: 16,
        keys: 2_000,
        failures: () => errors.length,
        maxPadding: 1_000,
      });
      const lookupsBefore = store.stats().discovery!.failures;
      await trouble(endpoint);
      const running = load.run(PHASE_MS);
      // Positive control: failed queries were seen during the load, so the list had its chances to go.
      await waitFor(
        'two failed configuration queries',
        () => store.stats().discovery!.failures >= lookupsBefore + 2,
        10_000,
      );
      await running;
      expect(cache.servers()).toEqual(members);
      expect(store.stats().discovery).toMatchObject({ healthy: false, configVersion: 1 });
      expect({
        rejected: load.total.rejected,
        wrong: load.total.wrong,
        lost: load.total.lost,
      }).toEqual({
        rejected: 0,
        wrong: 0,
        lost: 0,
      });
      expect(load.total.hits).toBeGreaterThan(0);
      expect(errors).toEqual([]);
    });
  });
});

const tlsRun =
  memcachedAvailable() &&
  serviceAvailable('openssl', findBinary('openssl') !== undefined, 'apt-get install openssl');

describe.runIf(tlsRun)('ElastiCache auto discovery over TLS (in-transit encryption)', () => {
  const ENDPOINT_HOST = '127.0.25.30';
  const NODE_HOSTS = ['127.0.25.31', '127.0.25.32'];
  let certificates: TestCertificates;
  let endpoint: TestConfigEndpoint;
  let nodes: MemcachedProcess[];
  const stores: MemcachedStore[] = [];

  beforeAll(async () => {
    certificates = makeTestCertificates({ ips: [ENDPOINT_HOST, ...NODE_HOSTS] });
    const args = [
      '-Z',
      '-o',
      `ssl_chain_cert=${certificates.certFile},ssl_key=${certificates.keyFile}`,
    ];
    const port = await freePort(NODE_HOSTS[0]);
    nodes = await Promise.all(
      NODE_HOSTS.map((host) => startMemcached({ host, port, args, tls: { ca: certificates.ca } })),
    );
    endpoint = await startConfigEndpoint({
      host: ENDPOINT_HOST,
      tls: { key: certificates.key, cert: certificates.cert },
    });
    endpoint.setNodes(nodes.map(listed));
  });

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.disconnect()));
  });

  afterAll(async () => {
    await endpoint?.close();
    await Promise.all((nodes ?? []).map((node) => node.stop()));
    certificates?.remove();
  });

  function store(ca: Buffer): MemcachedStore {
    const s = new MemcachedStore({
      discovery: 'elasticache',
      host: endpoint.address,
      tls: { ca },
      refreshInterval: 0,
      lookupTimeout: 2_000,
      logger: quietLogger,
    });
    stores.push(s);
    return s;
  }

  it('asks the endpoint and reaches every node over TLS', async () => {
    const s = store(certificates.ca);
    await s.ready();
    expect(s.servers()).toEqual(nodes.map((n) => n.id).sort());
    const items = () => Promise.all(nodes.map(async (n) => Number((await n.stats()).curr_items)));
    const before = await items();
    for (let i = 0; i < 20; i++) expect(await s.set(`tls:${i}`, `value ${i}`)).toBe(true);
    for (let i = 0; i < 20; i++) expect(await s.get(`tls:${i}`)).toBe(`value ${i}`);
    // The keys were spread over both nodes, each reached over TLS (counted from this test's start:
    // flush_all leaves curr_items as it was, so another test's items may already be there).
    const after = await items();
    expect(after.every((count, i) => count > before[i])).toBe(true);
    expect(s.stats().discovery).toMatchObject({ healthy: true, configVersion: 1 });
  });

  it('never asks an endpoint whose certificate it cannot verify, nor falls back to plaintext', async () => {
    const asked = endpoint.requests();
    const s = store(certificates.otherCa);
    await s.ready();
    expect(s.servers()).toEqual([]);
    expect(s.stats().discovery?.lastError).toMatch(/TLS connection failed/);
    expect(endpoint.requests()).toBe(asked);
  });
});
