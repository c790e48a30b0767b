import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry, register as globalRegister } from 'prom-client';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  FixedMembers,
  K8sOptionsError,
  MemcachedKeyMismatchError,
  MemcachedMemberError,
  MemcachedStore,
} from 'nestjs-k8s';
import type { LookupResult, Member, MemberDiff, MemberStats } from 'nestjs-k8s';
import { PromClientMissingError, registerCacheMetrics } from 'nestjs-k8s/prometheus';
import { loadPromClient } from '../../lib/metrics/prom-client-loader.js';
import { startDnsServer } from '../support/dns-server.js';
import type { TestDnsServer } from '../support/dns-server.js';
import {
  freePort,
  memcachedAvailable,
  startMemcached,
  stopAllMemcached,
} from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { parseExposition, sampleKey } from '../support/exposition.js';
import { HostileMember } from '../support/hostile-member.js';
import { quietLogger } from '../support/quiet-logger.js';
import { waitFor } from '../support/wait-for.js';
import { scaled } from '../support/timing.js';

// This file's loopback range: 127.0.15.x (127.0.15.20: a hostile member). One port for every
// member, as a headless Service gives.
const NAME = 'metrics.cache.svc.cluster.local';
const PREFIX = 'nestjs_k8s_cache_';

/** The key `parseExposition` gives a sample of this file's metrics. */
function key(name: string, labels: Record<string, string> = {}): string {
  return sampleKey(`${PREFIX}${name}`, labels);
}

async function scrape(registry: Registry): Promise<Map<string, number>> {
  return parseExposition(await registry.metrics());
}

/** memcached's own counters of one server. */
async function serverCounters(server: MemcachedProcess) {
  const stats = await server.stats();
  return {
    ops: Number(stats.cmd_get) + Number(stats.cmd_set),
    hits: Number(stats.get_hits),
    misses: Number(stats.get_misses),
  };
}

describe.runIf(memcachedAvailable())('cache metrics: stats(), events and prom-client', () => {
  let dns: TestDnsServer;
  let port: number;
  let servers: MemcachedProcess[];
  let store: MemcachedStore;
  let ejects: string[];
  let readmits: Array<[string, boolean]>;
  let refreshes: LookupResult[];
  let memberEvents: MemberDiff[];
  let errorMembers: string[];

  const memberStats = (id: string): MemberStats => {
    const found = store.stats().members.find((m) => m.member === id);
    if (!found) throw new Error(`${id} is not a member`);
    return found;
  };

  beforeAll(async () => {
    dns = await startDnsServer();
  });

  // Fresh members, records, store and event lists for each test: tests stop members, change the
  // records and count from the store's start.
  beforeEach(async () => {
    ejects = [];
    readmits = [];
    refreshes = [];
    memberEvents = [];
    errorMembers = [];
    port = await freePort('127.0.15.1');
    servers = await Promise.all(
      [1, 2, 3].map((i) => startMemcached({ host: `127.0.15.${i}`, port })),
    );
    dns.setA(
      NAME,
      servers.map((s) => s.host),
    );
    store = new MemcachedStore({
      host: NAME,
      port,
      dnsServers: [dns.address],
      // No periodic lookup, and no background generation reload: every command and lookup is one
      // the test made, or one its member failure asked for.
      refreshInterval: 0,
      minRefreshInterval: 100,
      generationCacheTime: 600_000,
      failureLimit: 2,
      retryTimeout: 300,
      // Generous: the stopped member fails at once (refused), the live ones must count no error.
      commandTimeout: scaled(2_000),
      connectTimeout: scaled(1_000),
      collectTimings: true,
      logger: quietLogger,
    });
    store.on('eject', (member: string) => ejects.push(member));
    store.on('readmit', (member: string, keptData: boolean) => readmits.push([member, keptData]));
    store.on('refresh', (result: LookupResult) => refreshes.push(result));
    store.on('members', (_: readonly Member[], diff: MemberDiff) => memberEvents.push(diff));
    store.on('error', (error: unknown) => {
      if (error instanceof MemcachedMemberError) errorMembers.push(error.member);
    });
    await store.ready();
    // Loads the generation (one get and one set per member) before the counted sequence.
    await store.get('warm-up');
  });

  afterEach(async () => {
    await store?.disconnect();
    await stopAllMemcached();
  });

  afterAll(async () => {
    await dns?.close();
  });

  it('counts every set, hit and miss per member as memcached itself counts them', async () => {
    expect(refreshes).toEqual([
      expect.objectContaining({ reason: 'start', members: 3, error: undefined }),
    ]);
    expect(refreshes[0].durationMs).toBeGreaterThan(0);
    const before = new Map(servers.map((s) => [s.id, memberStats(s.id)]));
    const serversBefore = await Promise.all(servers.map(serverCounters));

    const N = 30;
    const M = 20;
    const K = 10;
    for (let i = 0; i < N; i++) expect(await store.set(`key:${i}`, `value ${i}`)).toBe(true);
    for (let i = 0; i < M; i++) expect(await store.get(`key:${i}`)).toBe(`value ${i}`);
    for (let i = 0; i < K; i++) expect(await store.get(`absent:${i}`)).toBeUndefined();

    const serversAfter = await Promise.all(servers.map(serverCounters));
    const totals = { ops: 0, hits: 0, misses: 0, errors: 0, timed: 0 };
    servers.forEach((server, i) => {
      const was = before.get(server.id)!;
      const now = memberStats(server.id);
      const delta = {
        ops: now.ops - was.ops,
        hits: now.hits - was.hits,
        misses: now.misses - was.misses,
      };
      // What memcached counted for this server is what the pool counted for this member.
      expect(delta).toEqual({
        ops: serversAfter[i].ops - serversBefore[i].ops,
        hits: serversAfter[i].hits - serversBefore[i].hits,
        misses: serversAfter[i].misses - serversBefore[i].misses,
      });
      // One single-key command per operation, each timed once.
      const latency = now.latency!;
      expect(latency.count - was.latency!.count).toBe(delta.ops);
      expect(latency.buckets.at(-1)!.count).toBeLessThanOrEqual(latency.count);
      for (let b = 1; b < latency.buckets.length; b++) {
        expect(latency.buckets[b].count).toBeGreaterThanOrEqual(latency.buckets[b - 1].count);
      }
      expect(latency.sumMs).toBeGreaterThan(0);
      totals.ops += delta.ops;
      totals.hits += delta.hits;
      totals.misses += delta.misses;
      totals.errors += now.errors - was.errors;
      totals.timed += latency.count - was.latency!.count;
    });
    expect(totals).toEqual({ ops: N + M + K, hits: M, misses: K, errors: 0, timed: N + M + K });
    // The keys spread: every member served some of them.
    for (const server of servers) {
      expect(memberStats(server.id).ops).toBeGreaterThan(before.get(server.id)!.ops);
    }
  });

  it('counts a dead member’s errors and its ejection, then its readmission, in stats and events', async () => {
    const registry = new Registry();
    const unregister = registerCacheMetrics(store, { registry });
    const victim = servers[2];
    const errorsBefore = memberStats(victim.id).errors;
    await victim.stop();

    // Reads until the pool gives up on the victim (failureLimit 2), bounded in count.
    for (let i = 0; i < 200 && ejects.length === 0; i++) await store.get(`key:${i}`);
    expect(ejects).toEqual([victim.id]);
    const ejected = memberStats(victim.id);
    expect(ejected.ejections).toBe(1);
    expect(ejected.ejectedUntil).toBeDefined();
    // Every failure was reported once as an `error` event, and counted once.
    expect(ejected.errors - errorsBefore).toBe(errorMembers.filter((m) => m === victim.id).length);
    expect(ejected.errors - errorsBefore).toBeGreaterThanOrEqual(2);
    for (const other of servers.slice(0, 2)) expect(memberStats(other.id).errors).toBe(0);
    expect(store.stats().ring).toEqual(servers.slice(0, 2).map((s) => s.id));

    // The failures asked DNS again (rate-limited): one `refresh` event per lookup, members kept.
    await waitFor(
      'a failure-triggered lookup',
      () => refreshes.some((r) => r.reason === 'failure'),
      5_000,
    );
    expect(refreshes.filter((r) => r.reason === 'failure')).toEqual(
      refreshes
        .filter((r) => r.reason === 'failure')
        .map(() => expect.objectContaining({ members: 3, error: undefined })),
    );

    let samples = await scrape(registry);
    expect(samples.get(key('ejections_total', { member: victim.id }))).toBe(1);
    expect(samples.get(key('errors_total', { member: victim.id }))).toBe(ejected.errors);
    expect(samples.get(key('members', { state: 'ring' }))).toBe(2);
    expect(samples.get(key('members', { state: 'ejected' }))).toBe(1);

    await victim.restart();
    await waitFor('the victim’s readmission', () => readmits.length > 0, 5_000);
    // Whether it kept data is judged from whole seconds of uptime (in doubt: kept), not asserted.
    expect(readmits.map(([member]) => member)).toEqual([victim.id]);
    expect(memberStats(victim.id).readmissions).toBe(1);
    expect(store.stats().totals).toMatchObject({ ejections: 1, readmissions: 1 });
    samples = await scrape(registry);
    expect(samples.get(key('readmissions_total', { member: victim.id }))).toBe(1);
    expect(samples.get(key('members', { state: 'ring' }))).toBe(3);
    expect(samples.get(key('members', { state: 'ejected' }))).toBe(0);
    unregister();
  });

  it('counts a DNS change and a failing lookup, by reason, in stats, events and metrics', async () => {
    const registry = new Registry();
    const unregister = registerCacheMetrics(store, { registry, prefix: PREFIX });
    const removed = servers[2];
    dns.setA(
      NAME,
      servers.slice(0, 2).map((s) => s.host),
    );
    const changesBefore = memberEvents.length;
    await store.refresh();
    expect(refreshes.at(-1)).toMatchObject({ reason: 'manual', members: 2, error: undefined });
    expect(memberEvents.slice(changesBefore)).toEqual([
      { added: [], removed: [{ host: removed.host, port }] },
    ]);
    expect(store.stats().members.map((m) => m.member)).toEqual(
      servers.slice(0, 2).map((s) => s.id),
    );

    dns.setNxdomain(NAME);
    await store.refresh();
    const failed = refreshes.at(-1)!;
    expect(failed).toMatchObject({ reason: 'manual', members: 2 });
    expect(failed.error).toMatch(/answered no addresses/);

    const discovery = store.stats().discovery!;
    expect(discovery.failures).toBe(1);
    expect(discovery.healthy).toBe(false);
    // Every lookup gave exactly one `refresh` event, with the reason the counters have.
    const byReason = { start: 0, periodic: 0, failure: 0, manual: 0 };
    for (const r of refreshes) byReason[r.reason]++;
    expect(discovery.lookupsByReason).toEqual(byReason);
    expect(byReason).toMatchObject({ start: 1, periodic: 0, manual: 2 });
    expect(discovery.lookups).toBe(refreshes.length);

    const samples = await scrape(registry);
    for (const [reason, count] of Object.entries(byReason)) {
      expect(samples.get(key('dns_lookups_total', { reason }))).toBe(count);
    }
    expect(samples.get(key('dns_lookup_failures_total'))).toBe(1);
    expect(samples.get(key('dns_healthy'))).toBe(0);
    expect(samples.get(key('dns_last_success_timestamp_seconds'))).toBe(
      discovery.lastSuccessAt! / 1000,
    );
    // The removed member's series are gone; the others' equal the snapshot.
    expect([...samples.keys()].some((k) => k.includes(removed.id))).toBe(false);
    for (const m of store.stats().members) {
      const member = { member: m.member };
      expect(samples.get(key('operations_total', member))).toBe(m.ops);
      expect(samples.get(key('hits_total', member))).toBe(m.hits);
      expect(samples.get(key('misses_total', member))).toBe(m.misses);
      expect(samples.get(key('errors_total', member))).toBe(m.errors);
      expect(samples.get(key('ejections_total', member))).toBe(0);
      expect(samples.get(key('warmup_copies_total', member))).toBe(m.warmupCopies);
      expect(samples.get(key('replica_reads_total', member))).toBe(m.replicaReads);
      const latency = m.latency!;
      expect(samples.get(key('command_duration_seconds_count', member))).toBe(latency.count);
      expect(samples.get(key('command_duration_seconds_bucket', { ...member, le: '+Inf' }))).toBe(
        latency.count,
      );
      expect(samples.get(key('command_duration_seconds_bucket', { ...member, le: '0.001' }))).toBe(
        latency.buckets.find((b) => b.leMs === 1)!.count,
      );
      expect(samples.get(key('command_duration_seconds_sum', member))).toBeCloseTo(
        latency.sumMs / 1000,
        9,
      );
    }
    expect(samples.get(key('members', { state: 'ring' }))).toBe(2);

    unregister();
    expect(await registry.metrics()).not.toContain(PREFIX);
    expect(await registry.getMetricsAsJSON()).toEqual([]);
    unregister(); // idempotent
  });

  it('refuses to register twice on one registry, and registers again after unregistering', async () => {
    const registry = new Registry();
    const unregister = registerCacheMetrics(store, { registry });
    expect(() => registerCacheMetrics(store, { registry })).toThrow(K8sOptionsError);
    expect(() => registerCacheMetrics(store, { registry })).toThrow(
      /registered on this registry already: call the function the first registerCacheMetrics\(\) returned/,
    );
    // Another prefix on the same registry is fine.
    const other = registerCacheMetrics(store, { registry, prefix: 'other_cache_' });
    const samples = await scrape(registry);
    expect(samples.get(key('members', { state: 'ring' }))).toBe(3);
    expect(samples.get('other_cache_members{state="ring"}')).toBe(3);
    other();
    unregister();
    const again = registerCacheMetrics(store, { registry });
    expect((await scrape(registry)).get(key('members', { state: 'ring' }))).toBe(3);
    again();
    expect(() => registerCacheMetrics(store, { registry, prefix: '1bad-' })).toThrow(
      /Invalid metrics prefix "1bad-"/,
    );
  });

  it("registers on prom-client's global registry by default", async () => {
    const unregister = registerCacheMetrics(store);
    try {
      const samples = parseExposition(await globalRegister.metrics());
      expect(samples.get(key('members', { state: 'ring' }))).toBe(3);
    } finally {
      unregister();
    }
    expect(await globalRegister.metrics()).not.toContain(PREFIX);
  });

  it('counts periodic lookups: each one ends in one refresh event', async () => {
    dns.setA(NAME, [servers[0].host]);
    const periodic = new MemcachedStore({
      host: NAME,
      port,
      dnsServers: [dns.address],
      refreshInterval: 100,
      logger: quietLogger,
    });
    // At each event the next lookup has not started yet (its timer is armed after this one ends).
    const seen: Array<{ events: number; counted: number | undefined }> = [];
    let events = 0;
    periodic.on('refresh', (result: LookupResult) => {
      if (result.reason !== 'periodic') return;
      events++;
      seen.push({ events, counted: periodic.stats().discovery?.lookupsByReason?.periodic });
    });
    try {
      await periodic.ready();
      await waitFor('three periodic lookups', () => events >= 3, 5_000);
      expect(seen.slice(0, 3)).toEqual([1, 2, 3].map((n) => ({ events: n, counted: n })));
      expect(periodic.stats().discovery?.lookupsByReason).toMatchObject({ start: 1, manual: 0 });
    } finally {
      await periodic.disconnect();
    }
  });

  it('leaves out DNS metrics and latency for a fixed member list without collectTimings', async () => {
    const fixed = new MemcachedStore({
      source: new FixedMembers([{ host: servers[0].host, port }]),
      logger: quietLogger,
    });
    const registry = new Registry();
    const unregister = registerCacheMetrics(fixed, { registry });
    try {
      await fixed.ready();
      expect(await fixed.set('k', 'v')).toBe(true);
      expect(await fixed.get('k')).toBe('v');
      const [member] = fixed.stats().members;
      expect(member.latency).toBeUndefined();
      expect(fixed.stats().discovery).toBeUndefined();
      const text = await registry.metrics();
      const samples = parseExposition(text);
      expect(samples.get(key('hits_total', { member: servers[0].id }))).toBe(member.hits);
      expect(member.hits).toBeGreaterThanOrEqual(1);
      expect(text).not.toContain(`${PREFIX}dns_`);
      expect([...samples.keys()].some((k) => k.includes('command_duration'))).toBe(false);
    } finally {
      unregister();
      await fixed.disconnect();
    }
  });
});

describe('loading prom-client, an optional peer', () => {
  it('tells the user to install it when it cannot be resolved', async () => {
    // Node's own resolution from a directory with no node_modules: what an app without it gets.
    const dir = await mkdtemp(join(tmpdir(), 'nestjs-k8s-no-prom-'));
    try {
      const load = createRequire(join(dir, 'app.js'));
      expect(() => load('prom-client')).toThrow(/Cannot find module/);
      expect(() => loadPromClient(load)).toThrow(PromClientMissingError);
      expect(() => loadPromClient(load)).toThrow(/npm install prom-client/);
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  it('passes other failures through unchanged', () => {
    const broken = new Error('prom-client threw while loading');
    expect(() =>
      loadPromClient(() => {
        throw broken;
      }),
    ).toThrow(broken);
  });

  it('loads the installed one by default', () => {
    expect(loadPromClient().Registry).toBe(Registry);
  });
});

describe('cache metrics: key-check mismatches', () => {
  it("counts replies that carry another key's value in key_mismatches_total", async () => {
    const hostile = await HostileMember.start('127.0.15.20');
    const store = new MemcachedStore({
      source: new FixedMembers([hostile.member]),
      logger: quietLogger,
    });
    const errors: unknown[] = [];
    store.on('error', (error: unknown) => errors.push(error));
    const registry = new Registry();
    const unregister = registerCacheMetrics(store, { registry });
    const mismatches = async () =>
      (await scrape(registry)).get(key('key_mismatches_total', { member: hostile.id }));
    try {
      await store.ready();
      expect(await store.set('a', 'value a')).toBe(true);
      expect(await store.set('b', 'value b')).toBe(true);
      // The control: honest replies are read, and count none.
      expect(await store.get('a')).toBe('value a');
      expect(await mismatches()).toBe(0);

      // Every get now answers with the other stored item's flags and bytes, under the asked key.
      hostile.script = (command, reply) => {
        if (command.verb !== 'get') return reply;
        const [asked] = command.keys;
        const other = [...hostile.items].find(([k]) => k !== asked && !k.includes('~'));
        if (!other) return reply;
        const [, item] = other;
        return Buffer.concat([
          Buffer.from(`VALUE ${asked} ${item.flags} ${item.data.length}\r\n`),
          item.data,
          Buffer.from('\r\nEND\r\n'),
        ]);
      };
      expect(await store.get('a')).toBeUndefined();
      expect(await store.get('b')).toBeUndefined();
      const counted = store.stats().members[0].keyMismatches;
      expect(counted).toBe(2);
      expect(await mismatches()).toBe(counted);
      expect(errors.filter((e) => e instanceof MemcachedKeyMismatchError)).toHaveLength(2);
    } finally {
      unregister();
      await store.disconnect();
      await hostile.stop();
    }
  });
});
