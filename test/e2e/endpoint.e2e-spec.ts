import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import Keyv from 'keyv';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CacheService, K8S_MEMCACHED_STORE, K8sModule, MemcachedStore } from 'nestjs-k8s';
import type { MemcachedStoreOptions } from 'nestjs-k8s';
import type { MemcachedError } from '../../lib/errors/memcached.errors.js';
import { MemcachedTlsError } from '../../lib/errors/memcached.errors.js';
import { RECONNECT_MAX_MS, reconnectDelay } from '../../lib/memcached/pool/reconnect-backoff.js';
import { memcachedAvailable, startMemcached, stopAllMemcached } from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { quietLogger } from '../support/quiet-logger.js';
import { findBinary, serviceAvailable } from '../support/services.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import type { TcpProxy } from '../support/tcp-proxy.js';
import { makeTestCertificates } from '../support/test-certificates.js';
import type { TestCertificates } from '../support/test-certificates.js';
import { scaled } from '../support/timing.js';
import { VerifiedLoad } from '../support/verified-load.js';
import { sleep, waitFor } from '../support/wait-for.js';

// This file's loopback range: 127.0.125.x (the endpoint's memcached at .1, TCP proxies in front
// of it from .2), plus 127.0.0.1 for the one test that reaches the endpoint by name (`localhost`,
// the only name the system resolver knows here: endpoint mode connects through it).
//
// ElastiCache Serverless cannot run here. A memcached started with TLS (`-Z`) stands in for its
// endpoint, as AWS documents it: one endpoint name and port for the whole cache, TLS only, text
// (and meta) commands. A TCP proxy in front of it stands for the network: `cut()` makes the
// endpoint go away (connections reset, new ones refused) without losing what it holds.

const run =
  memcachedAvailable() &&
  serviceAvailable('openssl', findBinary('openssl') !== undefined, 'apt-get install openssl');

/** The endpoint's name, as its certificate holds it (no IP SANs: IPs fail the check). */
const NAME = 'mycache-abc123.serverless.use1.cache.amazonaws.com';
const TIMEOUT = scaled(500);
/**
 * Longest any call may take: a set waits for the namespace generation, then for itself, each at
 * most the command timeout plus memcache-client's timeout check interval (a quarter of it, at most
 * 250 ms), and the event loop's own delay.
 */
const CALL_BOUND = 2 * (TIMEOUT + scaled(250)) + scaled(250);
const PHASE_MS = 3_000;

describe.runIf(run)("discovery: 'endpoint' (a TLS memcached standing in for the endpoint)", () => {
  let certs: TestCertificates;
  let endpoint: MemcachedProcess;
  let tlsArgs: string[];
  const proxies: TcpProxy[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  let proxyCounter = 2;

  beforeAll(() => {
    certs = makeTestCertificates({ dnsNames: [NAME, 'localhost'] });
    tlsArgs = ['-Z', '-o', `ssl_chain_cert=${certs.certFile},ssl_key=${certs.keyFile}`];
  });

  // A fresh endpoint per test: tests stop, freeze and restart it.
  beforeEach(async () => {
    endpoint = await startMemcached({ host: '127.0.125.1', args: tlsArgs, tls: tlsFor() });
  });

  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
    await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
    await stopAllMemcached();
  });

  afterAll(() => {
    certs?.remove();
  });

  function tlsFor(servername = NAME) {
    return { ca: certs.ca, servername };
  }

  /** A forwarding proxy to the endpoint on its own address: the endpoint as the app sees it. */
  async function network(): Promise<TcpProxy> {
    const proxy = await startTcpProxy(endpoint, { listenHost: `127.0.125.${proxyCounter++}` });
    proxy.forward();
    proxies.push(proxy);
    return proxy;
  }

  function store(host: string, options: Partial<MemcachedStoreOptions> = {}) {
    const s = new MemcachedStore({
      discovery: 'endpoint',
      host,
      tls: tlsFor(),
      connectTimeout: TIMEOUT,
      commandTimeout: TIMEOUT,
      logger: quietLogger,
      ...options,
    });
    const errors: MemcachedError[] = [];
    const ejections: string[] = [];
    s.on('error', (error) => errors.push(error));
    s.on('eject', (member) => ejections.push(member));
    cleanups.push(() => s.disconnect());
    return { store: s, errors, ejections };
  }

  it('is one member over TLS, through K8sModule: the certificate is checked against the endpoint name', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        K8sModule.forRoot({
          cache: {
            discovery: 'endpoint',
            host: endpoint.id,
            tls: { ca: certs.ca, servername: NAME },
            namespace: 'one',
          },
        }),
      ],
    }).compile();
    const app: INestApplication = moduleRef.createNestApplication({ logger: false });
    await app.init();
    cleanups.push(() => app.close());
    const cache = app.get(CacheService);
    const before = Number((await endpoint.stats()).cmd_set);
    for (let i = 0; i < 50; i++) await cache.set(`k${i}`, `value ${i}`);
    for (let i = 0; i < 50; i++) expect(await cache.get(`k${i}`)).toBe(`value ${i}`);
    expect(Number((await endpoint.stats()).cmd_set)).toBeGreaterThanOrEqual(before + 50);
    expect(cache.servers()).toEqual([endpoint.id]);
    const stats = app.get<MemcachedStore>(K8S_MEMCACHED_STORE).stats();
    expect(stats.ring).toEqual([endpoint.id]);
    // Nothing is looked up: no discovery stats, no lookups.
    expect(stats.discovery).toBeUndefined();
  });

  it('refuses a certificate for another name, never in plaintext, and still never ejects the endpoint', async () => {
    const before = await endpoint.stats();
    const {
      store: s,
      errors,
      ejections,
    } = store(endpoint.id, {
      tls: tlsFor('other.example'),
    });
    for (let i = 0; i < 10; i++) expect(await s.set(`k${i}`, 'v')).toBe(false);
    expect(errors[0]).toBeInstanceOf(MemcachedTlsError);
    expect(errors[0].message).toMatch(/TLS handshake.*other\.example/);
    expect(ejections).toEqual([]);
    expect(s.stats().ring).toEqual([endpoint.id]);
    const after = await endpoint.stats();
    expect([after.cmd_set, after.cmd_get]).toEqual([before.cmd_set, before.cmd_get]);
  });

  it("reached by name, sends that name as servername: the certificate's DNS name is what is checked", async () => {
    const local = await startMemcached({ host: '127.0.0.1', args: tlsArgs, tls: tlsFor() });
    // No servername given: the endpoint's name is used, and the certificate holds it.
    const byName = store(`localhost:${local.port}`, { tls: { ca: certs.ca } });
    expect(byName.store.opts.tls?.servername).toBe('localhost');
    expect(await byName.store.set('named', 'yes')).toBe(true);
    expect(await byName.store.get('named')).toBe('yes');
    expect(byName.errors).toEqual([]);
    // Control: by IP the same options check the IP, which the certificate does not hold.
    const byIp = store(local.id, { tls: { ca: certs.ca } });
    expect(await byIp.store.set('named', 'no')).toBe(false);
    expect(byIp.errors[0]).toBeInstanceOf(MemcachedTlsError);
  });

  const outages: Array<
    [string, (proxy: TcpProxy) => Promise<void> | void, (proxy: TcpProxy) => Promise<void> | void]
  > = [
    ['goes away (connections reset, then refused)', (p) => void p.cut(), (p) => p.forward()],
    [
      'hangs (SIGSTOP: connections accepted, never answered)',
      () => endpoint.freeze(),
      () => endpoint.thaw(),
    ],
    [
      'restarts (killed, then started again empty)',
      () => endpoint.stop(),
      () => endpoint.restart(),
    ],
  ];

  it.each(outages)(
    'when the endpoint %s under load: never ejected, no call past its timeouts, no wrong value, back within one back-off step',
    async (outage, breakIt, restore) => {
      const proxy = await network();
      const address = `127.0.125.${proxyCounter - 1}:${proxy.port}`;
      const { store: s, errors, ejections } = store(address);
      const keyv = new Keyv({ store: s, namespace: 'outage' });
      expect(await keyv.set('written-before', 'still here')).toBe(true);
      // Control: a pool of servers (discovery 'dns') on the same endpoint ejects it.
      const control = store(address, { discovery: 'dns', failureLimit: 2, retryTimeout: 60_000 });
      const controlKeyv = new Keyv({ store: control.store, namespace: 'control' });

      let samples = 0;
      let offRing = 0;
      const sampler = setInterval(() => {
        samples++;
        if (s.stats().ring.length !== 1) offRing++;
      }, 20);
      cleanups.push(async () => clearInterval(sampler));
      const load = new VerifiedLoad(keyv, {
        workers: 16,
        keys: 1_000,
        failures: () => errors.length,
        maxPadding: 1_000,
      });
      const running = load.run(PHASE_MS);
      await sleep(PHASE_MS / 6);
      await breakIt(proxy);
      const controlLoad = (async () => {
        const until = Date.now() + scaled(10_000);
        while (control.ejections.length === 0 && Date.now() < until) await controlKeyv.get('x');
      })();
      await waitFor('failed calls during the outage', () => errors.length > 2, 5_000);
      await waitFor('the control pool to eject it', () => control.ejections.length > 0, 10_000);
      await restore(proxy);
      const restored = Date.now();
      // Back within one back-off step (and one call's timeouts): a write lands again.
      await waitFor(
        'a write through again',
        () => s.set('after', 'back'),
        RECONNECT_MAX_MS + CALL_BOUND,
      );
      const backAfterMs = Date.now() - restored;
      const phase = await running;
      clearInterval(sampler);
      await controlLoad;

      console.log(
        `endpoint ${outage}: ${phase.ops} operations, ${errors.length} failed (misses / false), ` +
          `longest call ${phase.maxLatencyMs} ms (bound ${CALL_BOUND}), writes back ` +
          `${backAfterMs} ms after the endpoint was, ${samples} ring samples all with the endpoint`,
      );
      expect(backAfterMs).toBeLessThan(RECONNECT_MAX_MS + CALL_BOUND);
      expect(samples).toBeGreaterThan(20);
      expect({ offRing, ejections, totalEjections: s.stats().totals.ejections }).toEqual({
        offRing: 0,
        ejections: [],
        totalEjections: 0,
      });
      expect(control.ejections).toEqual([address]);
      expect(load.wrongSamples).toEqual([]);
      expect({ rejected: phase.rejected, wrong: phase.wrong, lost: phase.lost }).toEqual({
        rejected: 0,
        wrong: 0,
        lost: 0,
      });
      expect(phase.maxLatencyMs).toBeLessThan(CALL_BOUND);
      expect(phase.hits).toBeGreaterThan(0);
      if (!outage.startsWith('restarts')) {
        // What the endpoint held before is still served: nothing emptied the cache.
        expect(await keyv.get('written-before')).toBe('still here');
      }
    },
  );

  it('spaces out reconnects while the endpoint refuses: 32 callers make one attempt per back-off step', async () => {
    const proxy = await network();
    const { store: s, errors } = store(`127.0.125.${proxyCounter - 1}:${proxy.port}`);
    expect(await s.set('warm', 'up')).toBe(true);
    const OUTAGE_MS = 1_500;
    proxy.cut();
    const before = proxy.connections();
    const started = Date.now();
    let calls = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        for (let i = 0; i < 5_000 && Date.now() - started < OUTAGE_MS; i++) {
          calls++;
          await s.get(`k${i % 100}`);
          await sleep(1);
        }
      }),
    );
    const elapsed = Date.now() - started;
    const attempts = proxy.connections() - before;
    // The most attempts the back-off allows in `elapsed` ms: each step at its shortest.
    let allowed = 0;
    for (let at = 0; at <= elapsed; allowed++) at += reconnectDelay(allowed + 1, () => 0);
    expect(calls).toBeGreaterThan(1_000);
    expect(errors.length).toBeGreaterThan(1_000);
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(attempts).toBeLessThanOrEqual(allowed + 1);
    console.log(
      `endpoint refusing for ${elapsed} ms: ${calls} calls, ${attempts} connection attempts (at most ${allowed + 1} allowed)`,
    );
  });
});
