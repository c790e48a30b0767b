import { createHook } from 'node:async_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemberDiscovery } from '../../lib/discovery/member-discovery.js';
import { MemcachedStore } from '../../lib/memcached/store/memcached.store.js';
import { startDnsServer } from '../support/dns-server.js';
import type { TestDnsServer } from '../support/dns-server.js';
import {
  freePort,
  memcachedAvailable,
  startMemcached,
  stopAllMemcached,
} from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { activeResources, growth, openSockets } from '../support/process-resources.js';
import { quietLogger } from '../support/quiet-logger.js';
import { sleep, waitForValue } from '../support/wait-for.js';
import { scaled } from '../support/timing.js';

/**
 * DNS misbehaving under a running cache (issue 6, item 3): the server killed, SERVFAIL, silence,
 * malformed answers, a very long answer, and a record set that changes every 100 ms, while
 * operations run through `MemcachedStore` against real memcached processes. Nothing reaches the
 * caller, the pool never empties while its members live, no value is lost or read stale, lookups
 * keep to their limits, and no socket, timer or DNS request outlives `disconnect()`.
 *
 * This file's loopback range: 127.0.12.x (memcached); DNS names point only there.
 */

const NAME = 'memcached.faults.svc.cluster.local';

/** Gaps between consecutive times (ms). */
const gaps = (times: readonly number[]) => times.slice(1).map((t, i) => t - times[i]);

/** Async resources that hold a socket, a timer or a DNS request (not promises, not GC-bound channels). */
const TRACKED = new Set([
  'Timeout',
  'TCPWRAP',
  'TCPCONNECTWRAP',
  'UDPWRAP',
  'UDPSENDWRAP',
  'QUERYWRAP',
  'GETADDRINFOREQWRAP',
  'TLSWRAP',
  'WRITEWRAP',
  'SHUTDOWNWRAP',
]);

/**
 * Every tracked async resource created while it is on, and the ones not yet destroyed: unlike
 * `getActiveResourcesInfo()`, this sees unref'd timers too (discovery's timers are unref'd).
 */
function trackResources() {
  const alive = new Map<number, string>();
  let recording = true;
  const created = new Map<string, number>();
  const hook = createHook({
    init(asyncId, type) {
      if (!recording || !TRACKED.has(type)) return;
      alive.set(asyncId, type);
      created.set(type, (created.get(type) ?? 0) + 1);
    },
    destroy(asyncId) {
      alive.delete(asyncId);
    },
  }).enable();
  return {
    created,
    /** Tracked resources still alive, as counts per type. */
    alive: () => {
      const counts = new Map<string, number>();
      for (const type of alive.values()) counts.set(type, (counts.get(type) ?? 0) + 1);
      return counts;
    },
    /** Stop recording new resources (the test's own waits from now on), still seeing destroys. */
    freeze: () => {
      recording = false;
    },
    stop: () => hook.disable(),
  };
}

/** Wait (bounded) until `check` lists nothing left; the error names what was left. */
async function noneLeft(what: string, check: () => string[]): Promise<void> {
  await waitForValue(`no ${what} left`, check, (left) => left.length === 0, 3_000);
}

describe.runIf(memcachedAvailable())('DNS faults under a running MemcachedStore', () => {
  let dns: TestDnsServer;
  let port: number;
  let servers: MemcachedProcess[];
  const hosts = () => servers.map((s) => s.host);
  const ids = (xs: readonly MemcachedProcess[]) => xs.map((s) => s.id).sort();
  /** Figures for the report, printed after the tests that ran (in whatever order). */
  const figures: string[] = [];

  beforeAll(async () => {
    dns = await startDnsServer();
    port = await freePort('127.0.12.1');
    servers = await Promise.all(
      [1, 2, 3, 4].map((i) => startMemcached({ host: `127.0.12.${i}`, port })),
    );
  });

  afterAll(async () => {
    if (figures.length > 0) console.log(`DNS faults:\n${figures.join('\n')}`);
    await dns?.close();
    await stopAllMemcached();
  });

  it('SERVFAIL, silence, random bytes, a wrong-id answer, a cut answer, then the server killed: the pool serves on, nothing lost, nothing leaks', async () => {
    // The store's own DNS server, so that killing it touches nothing else.
    const own = await startDnsServer();
    const three = hosts().slice(0, 3);
    own.setA(NAME, three);
    const socketsBefore = openSockets();
    const resourcesBefore = activeResources();
    const tracked = trackResources();

    const REFRESH_MS = 100;
    const store = new MemcachedStore({
      host: NAME,
      port,
      dnsServers: [own.address],
      refreshInterval: REFRESH_MS,
      minRefreshInterval: 100,
      lookupTimeout: 300,
      // The faults here are DNS's: a loaded machine must not make a memcached reply look late.
      commandTimeout: 5_000,
      namespace: 'dns-faults',
      logger: quietLogger,
    });
    const storeErrors: unknown[] = [];
    store.on('error', (error) => storeErrors.push(error));
    await store.ready();
    expect(store.servers()).toEqual(ids(servers.slice(0, 3)));

    const KEYS = Array.from({ length: 300 }, (_, i) => `faults:${i}`);
    expect(await store.setMany(KEYS.map((key) => ({ key, value: { key } })))).toEqual(
      KEYS.map(() => true),
    );

    // Load throughout: every read must find its value (the members never change), every write
    // must land; a throw would be a caller-visible error.
    let stop = false;
    const callerErrors: unknown[] = [];
    let reads = 0;
    let lost = 0;
    let failedWrites = 0;
    const poolSizes = new Set<number>();
    const worker = async (w: number) => {
      for (let i = 0; i < 100_000 && !stop; i++) {
        const key = KEYS[(w * 37 + i) % KEYS.length];
        try {
          if (i % 5 === 0) {
            if (!(await store.set(key, { key }))) failedWrites++;
          } else {
            const value = (await store.get(key)) as { key: string } | undefined;
            reads++;
            if (value?.key !== key) lost++;
          }
        } catch (error) {
          callerErrors.push(error);
        }
        poolSizes.add(store.servers().length);
        if (i % 20 === 0) await sleep(1);
      }
    };
    const load = Promise.all(Array.from({ length: 4 }, (_, w) => worker(w)));

    const faults: Array<[string, () => void | Promise<void>]> = [
      ['SERVFAIL', () => own.setServfail(NAME)],
      ['no answer (lookups time out)', () => own.setSilent(true, NAME)],
      ['random bytes', () => own.setGarbage(NAME, 'random')],
      [
        // What a spoofer sends: other addresses under a guessed id. They must never be taken.
        'a wrong-id answer naming other addresses',
        () => {
          own.setA(NAME, ['127.0.12.200', '127.0.12.201']);
          own.setGarbage(NAME, 'wrong-id');
        },
      ],
      ['an answer cut mid-record', () => own.setGarbage(NAME, 'truncated')],
      ['the DNS server killed', () => own.close()],
    ];
    const seen: string[] = [];
    const queriesAt = (): number => own.queryCount(NAME, 'A');
    let faultsInjected = 0;
    const began = Date.now();
    for (const [fault, inject] of faults) {
      const failuresBefore = store.stats().discovery!.failures;
      const queriesBefore = queriesAt();
      await inject();
      faultsInjected++;
      // Held for several refresh periods: the periodic lookups meet the fault.
      await sleep(700);
      const discovery = store.stats().discovery!;
      expect(discovery.failures, fault).toBeGreaterThan(failuresBefore);
      expect(discovery.healthy, fault).toBe(false);
      expect(store.servers(), fault).toEqual(ids(servers.slice(0, 3)));
      seen.push(`${fault}: ${discovery.lastError ?? ''}`);
      if (fault !== 'the DNS server killed') {
        // The server was asked meanwhile, but at most once per refresh period (plus one).
        const asked = queriesAt() - queriesBefore;
        expect(asked, fault).toBeGreaterThanOrEqual(1);
        expect(asked, fault).toBeLessThanOrEqual(Math.floor(700 / REFRESH_MS) + 1);
        own.setSilent(false, NAME);
        own.setA(NAME, three);
        await store.refresh();
        expect(store.stats().discovery!.healthy, fault).toBe(true);
      }
    }
    const elapsed = Date.now() - began;
    stop = true;
    await load;

    expect(callerErrors).toEqual([]);
    expect(lost).toBe(0);
    expect(failedWrites).toBe(0);
    expect(reads).toBeGreaterThan(1_000);
    expect([...poolSizes]).toEqual([3]);
    // Over the whole run: never more than one lookup per refresh period (each forced refresh
    // above adds one), whatever the answers were.
    const lookups = store.stats().discovery!.lookups;
    expect(lookups).toBeLessThanOrEqual(Math.ceil(elapsed / REFRESH_MS) + faults.length + 1);

    await store.disconnect();
    tracked.freeze();
    // Everything the store opened is closed: sockets (memcached connections, c-ares' UDP
    // sockets), timers (unref'd ones included) and DNS requests.
    own.resetCounts();
    await noneLeft('sockets', () =>
      openSockets() > socketsBefore ? [`${openSockets() - socketsBefore} sockets`] : [],
    );
    await noneLeft('active resources', () => growth(resourcesBefore, activeResources()));
    await noneLeft('tracked resources', () =>
      [...tracked.alive()].map(([type, n]) => `${type} ${n}`),
    );
    tracked.stop();

    figures.push(
      `faults under load: ${faultsInjected} injected over ${elapsed} ms; ${reads} reads, ` +
        `${lost} values lost, ${callerErrors.length} caller-visible errors, ` +
        `${storeErrors.length} store error events; ${lookups} lookups; pool sizes seen ${[...poolSizes].join(',')}`,
      ...seen.map((line) => `  ${line}`),
      `resources created by the store: ${[...tracked.created].map(([t, n]) => `${t} ${n}`).join(', ')}; left after disconnect: none`,
    );
  });

  it('a storm of failure-triggered refreshes while DNS times out: one lookup at a time, at most one per window', async () => {
    const name = 'storm.faults.svc.cluster.local';
    dns.setA(name, hosts().slice(0, 2));
    const WINDOW = 200;
    const discovery = new MemberDiscovery({
      host: name,
      port,
      dnsServers: [dns.address],
      refreshInterval: 0,
      minRefreshInterval: WINDOW,
      // Longer than the window: each lookup outlasts it, so single-flight must hold them back.
      lookupTimeout: 300,
      logger: quietLogger,
    });
    try {
      await discovery.start();
      dns.setSilent(true, name);
      dns.resetCounts();
      const began = Date.now();
      // 40 bursts of 50 "connection refused" over 2 s.
      for (let burst = 0; burst < 40; burst++) {
        for (let i = 0; i < 50; i++) discovery.requestRefresh('ECONNREFUSED 127.0.12.1:11211');
        await sleep(50);
      }
      await sleep(400); // the lookup owed at the end, and its timeout
      const elapsed = Date.now() - began;
      const queries = dns.queryTimes(name, 'A');
      // Each lookup waits for the one before to time out (300 ms): without single-flight and the
      // limit there would be 2,000.
      expect(queries.length).toBeGreaterThanOrEqual(3);
      expect(queries.length).toBeLessThanOrEqual(Math.floor(elapsed / WINDOW) + 1);
      for (const gap of gaps(queries)) expect(gap).toBeGreaterThanOrEqual(WINDOW - 100);
      expect(discovery.members().map((m) => m.host)).toEqual(hosts().slice(0, 2));
      figures.push(
        `refresh storm during a DNS outage: 2000 requests in ${elapsed} ms -> ${queries.length} A queries, list kept`,
      );
    } finally {
      dns.setSilent(false, name);
      discovery.stop();
    }
  });

  it('a 500-record answer (UDP truncated, retried over TCP) is taken whole or not at all, and a short one replaces it', async () => {
    const name = 'long.faults.svc.cluster.local';
    // Loopback addresses nobody listens on: discovery alone, no connection is made.
    const many = Array.from(
      { length: 500 },
      (_, i) => `127.12.${Math.floor(i / 250)}.${(i % 250) + 1}`,
    );
    dns.setA(name, many);
    const discovery = new MemberDiscovery({
      host: name,
      port,
      dnsServers: [dns.address],
      refreshInterval: 0,
      // dns2 takes most of a second to encode 500 records (twice: UDP, then TCP) on this
      // process's own event loop: the time limit must not be what this test measures.
      lookupTimeout: 10_000,
      logger: quietLogger,
    });
    try {
      // Either the whole answer or the list as it was, never a cut list: several rounds, since a
      // truncated UDP answer takes another path (TCP) each time.
      const key = (members: readonly { host: string }[]) => members.map((m) => m.host).join();
      const short = hosts().slice(0, 2);
      let taken = 0;
      let kept = 0;
      await discovery.start();
      for (let round = 0; round < 2; round++) {
        const before = key(discovery.members());
        dns.setA(name, many);
        await discovery.refresh();
        const after = discovery.members();
        if (after.length === 500) {
          taken++;
          expect(after.map((m) => m.host).sort()).toEqual([...many].sort());
        } else {
          kept++;
          expect(key(after)).toBe(before);
        }
        dns.setA(name, short);
        await discovery.refresh();
        expect(discovery.members().map((m) => m.host)).toEqual(short);
      }
      // The TCP retry works (the test server answers over TCP on the same port).
      expect(taken).toBeGreaterThanOrEqual(1);
      figures.push(
        `500-record answer: taken whole in ${taken} of 2 lookups, list kept in ${kept}; ` +
          'the short answer after it replaced it every time',
      );
    } finally {
      discovery.stop();
    }
  });

  it('flapping: the record set changes every 100 ms for 3 s under load; no caller error, never an empty pool, no stale read, lookups within their limits', async () => {
    const REFRESH_MS = 200;
    const MIN_REFRESH_MS = 200;
    const STEP_MS = 100;
    const STEPS = 30;
    const live = hosts();
    // Non-empty subsets of the four live members, and answers that must change nothing.
    const steps: Array<(name: string) => void> = [];
    for (let i = 0; i < STEPS; i++) {
      if (i % 7 === 3) steps.push((n) => dns.setNxdomain(n));
      else if (i % 7 === 5) steps.push((n) => dns.setServfail(n));
      else if (i % 7 === 6) steps.push((n) => dns.setEmpty(n));
      else {
        const size = 1 + (i % 4);
        const from = (i * 3) % 4;
        const subset = Array.from({ length: size }, (_, k) => live[(from + k) % 4]);
        steps.push((n) => dns.setA(n, subset));
      }
    }
    dns.setA(NAME, live);
    const socketsBefore = openSockets();
    const resourcesBefore = activeResources();

    const store = new MemcachedStore({
      host: NAME,
      port,
      dnsServers: [dns.address],
      refreshInterval: REFRESH_MS,
      minRefreshInterval: MIN_REFRESH_MS,
      lookupTimeout: 300,
      // The faults here are DNS's: a loaded machine must not make a memcached reply look late.
      connectTimeout: scaled(1_000),
      commandTimeout: scaled(2_000),
      retryTimeout: 200,
      namespace: 'dns-flap',
      logger: quietLogger,
    });
    const storeErrors: unknown[] = [];
    store.on('error', (error) => storeErrors.push(error));
    const memberChanges: number[] = [];
    store.on('members', (members: readonly unknown[]) => memberChanges.push(members.length));
    await store.ready();
    expect(store.servers()).toEqual(ids(servers));

    // Each worker owns its keys, so a read is checked against the last version it wrote.
    const WORKERS = 8;
    const KEYS_PER_WORKER = 40;
    let stop = false;
    const callerErrors: unknown[] = [];
    let reads = 0;
    let hits = 0;
    let stale = 0;
    let wrong = 0;
    let writes = 0;
    let failedWrites = 0;
    let emptyPoolSamples = 0;
    const worker = async (w: number) => {
      // acked[i]: the last version whose write was acknowledged; written[i]: the last attempted.
      const acked = new Array<number>(KEYS_PER_WORKER).fill(-1);
      const written = new Array<number>(KEYS_PER_WORKER).fill(-1);
      for (let i = 0; i < 100_000 && !stop; i++) {
        const slot = (i * 7 + w) % KEYS_PER_WORKER;
        const key = `flap:${w}:${slot}`;
        try {
          if (i % 3 === 0) {
            const version = written[slot] + 1;
            written[slot] = version;
            writes++;
            if (await store.set(key, { w, slot, version })) acked[slot] = version;
            else failedWrites++;
          } else {
            const value = (await store.get(key)) as
              { w: number; slot: number; version: number } | undefined;
            reads++;
            if (value !== undefined) {
              hits++;
              if (value.w !== w || value.slot !== slot || value.version > written[slot]) wrong++;
              else if (value.version < acked[slot]) stale++;
            }
          }
        } catch (error) {
          callerErrors.push(error);
        }
        if (store.servers().length === 0) emptyPoolSamples++;
        if (i % 10 === 0) await sleep(1);
      }
    };

    dns.resetCounts();
    const began = Date.now();
    const load = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
    for (const step of steps) {
      step(NAME);
      await sleep(STEP_MS);
    }
    // The flapping ends on the full set; give discovery a period to catch up.
    dns.setA(NAME, live);
    await sleep(REFRESH_MS * 2 + 100);
    const elapsed = Date.now() - began;
    stop = true;
    await load;

    expect(callerErrors).toEqual([]);
    expect(emptyPoolSamples).toBe(0);
    expect(memberChanges.every((n) => n > 0)).toBe(true);
    expect(memberChanges.length).toBeGreaterThanOrEqual(3); // it did flap
    expect(wrong).toBe(0);
    expect(stale).toBe(0);
    expect(reads).toBeGreaterThan(1_000);
    expect(store.servers()).toEqual(ids(servers));

    // Lookups: one A query each; at most one per min(refreshInterval, minRefreshInterval),
    // against 30 changes. Arrival times carry event-loop lag, hence the looser gap margin.
    const queries = dns.queryTimes(NAME, 'A');
    const window = Math.min(REFRESH_MS, MIN_REFRESH_MS);
    expect(queries.length).toBeLessThanOrEqual(Math.floor(elapsed / window) + 1);
    for (const gap of gaps(queries)) expect(gap).toBeGreaterThanOrEqual(window - 100);

    await store.disconnect();
    await noneLeft('sockets', () =>
      openSockets() > socketsBefore ? [`${openSockets() - socketsBefore} sockets`] : [],
    );
    await noneLeft('active resources', () => growth(resourcesBefore, activeResources()));

    figures.push(
      `flapping: ${STEPS} DNS changes in ${STEPS * STEP_MS} ms (${STEPS - Math.floor(STEPS / 7) * 3} sets, ` +
        `the rest NXDOMAIN/SERVFAIL/empty); ${queries.length} A queries in ${elapsed} ms; ` +
        `${memberChanges.length} member changes applied (sizes ${memberChanges.join(',')}); ` +
        `${reads} reads (${hits} hits), ${writes} writes (${failedWrites} not stored); ` +
        `${stale} stale, ${wrong} wrong, ${callerErrors.length} caller-visible errors, ` +
        `${emptyPoolSamples} empty-pool samples, ${storeErrors.length} store error events`,
    );
  });
});
