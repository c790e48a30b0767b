// Routing and scale figures: ring speed, key movement, DNS under a failure storm, time to use a
// new member, caller-visible errors during a member kill, and memory/sockets over a long run.
import { NestFactory } from '@nestjs/core';
import { CacheService, K8sModule, MemcachedStore } from '../dist/lib/index.js';
import { memberId } from '../dist/lib/discovery/member.js';
import { HashRing, ketamaHash } from '../dist/lib/memcached/ring/hash-ring.js';
import {
  collectGarbage,
  measure,
  openSockets,
  progress,
  sleep,
  startMemcached,
} from './support.js';

const quiet = { log() {}, warn() {}, error() {}, debug() {}, verbose() {} };
const fakeMembers = (n) =>
  Array.from({ length: n }, (_, i) => ({
    host: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    port: 11211,
  }));

/**
 * ns per `indexOf` on a ring of `size` members, over `count` distinct keys (hash included); the
 * best of 5 passes, the cost without interference from other processes on the cores.
 */
export function ringLookup(size, count) {
  const ring = new HashRing(fakeMembers(size));
  const keys = Array.from({ length: count }, (_, i) => `bench:user:${i}:profile`);
  let sink = 0;
  for (let i = 0; i < count; i++) sink += ring.indexOf(keys[i]); // warm-up (JIT)
  const rates = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < count; i++) sink += ring.indexOf(keys[i]);
    rates.push(((performance.now() - t0) * 1e6) / count);
  }
  if (sink < 0) throw new Error('unreachable');
  return Math.min(...rates);
}

/** ms to build a ring of `size` members (the best of repeated builds, as for lookups). */
export function ringRebuild(size) {
  const members = fakeMembers(size);
  new HashRing(members);
  const times = [];
  const until = performance.now() + 300;
  while (times.length < 5 || (times.length < 50 && performance.now() < until)) {
    const t0 = performance.now();
    new HashRing(members);
    times.push(performance.now() - t0);
  }
  return Math.min(...times);
}

/** Fraction of `count` keys whose member changes from `before` to `after` members. */
function moved(before, after, count) {
  const a = new HashRing(fakeMembers(before));
  const b = new HashRing(fakeMembers(after));
  let ring = 0;
  let modulo = 0;
  for (let i = 0; i < count; i++) {
    const key = `placement:${i}`;
    if (memberId(a.get(key)) !== memberId(b.get(key))) ring++;
    // Modulo placement (memjs and most naive clients) on the same hash.
    const h = ketamaHash(key);
    if (memberId(fakeMembers(before)[h % before]) !== memberId(fakeMembers(after)[h % after])) {
      modulo++;
    }
  }
  return { ring: ring / count, modulo: modulo / count };
}

export function routingFigures({ quick }) {
  progress('ring lookup, rebuild and key movement');
  const lookupKeys = quick ? 20_000 : 200_000;
  const moveKeys = quick ? 20_000 : 100_000;
  return {
    lookup: [3, 300].map((size) => ({ size, ns: ringLookup(size, lookupKeys) })),
    rebuild: [3, 30, 300].map((size) => ({ size, ms: ringRebuild(size) })),
    movement: [
      [3, 4],
      [10, 11],
      [10, 9],
    ].map(([from, to]) => ({
      from,
      to,
      // Ideal: the new member takes 1/to; a leaving one hands over its 1/from.
      ideal: to > from ? 1 / to : 1 / from,
      ...moved(from, to, moveKeys),
    })),
  };
}

/** Keys that `ring` (over `members`) places on `target`. */
function keysOn(members, target, count, prefix) {
  const ring = new HashRing(members);
  const keys = [];
  for (let i = 0; keys.length < count; i++) {
    const key = `${prefix}${i}`;
    if (memberId(ring.get(key)) === memberId(target)) keys.push(key);
  }
  return keys;
}

/**
 * 1,000 concurrent gets on keys of a member that refuses connections: how many DNS lookups
 * (A queries) that causes, per rate-limit window of `minRefreshInterval`.
 */
async function dnsStorm(dns, live, deadHost) {
  const name = 'storm.bench';
  const port = live[0].port;
  dns.setA(name, [...live.map((m) => m.host), deadHost]);
  const minRefreshInterval = 1000;
  const store = new MemcachedStore({
    host: name,
    port,
    dnsServers: [dns.address],
    minRefreshInterval,
    refreshInterval: 0,
    logger: quiet,
  });
  await store.ready();
  await store.set('warm', 'x'); // generation known: every get below goes straight to its member
  const members = store.servers().map((id) => ({ host: id.split(':')[0], port }));
  const keys = keysOn(members, { host: deadHost, port }, 1000, 'storm:');
  dns.reset();
  const t0 = performance.now();
  let errors = 0;
  await Promise.all(keys.map((key) => store.get(key).catch(() => errors++)));
  const stormMs = performance.now() - t0;
  // A failure-triggered lookup owed at the end of the window runs then: wait two windows.
  await sleep(2 * minRefreshInterval + 200);
  const times = dns.queryTimes(name).map((t) => t - t0);
  const windows = new Map();
  for (const t of times) {
    const w = Math.floor(t / minRefreshInterval);
    windows.set(w, (windows.get(w) ?? 0) + 1);
  }
  await store.disconnect();
  return {
    operations: keys.length,
    stormMs,
    lookups: times.length,
    maxPerWindow: Math.max(0, ...windows.values()),
    windowMs: minRefreshInterval,
    errors,
  };
}

/** A member added to DNS while traffic runs: ms until the pool sends it its first request. */
async function newMemberLatency(dns, live, newcomer, refreshInterval) {
  const name = 'join.bench';
  dns.setA(
    name,
    live.map((m) => m.host),
  );
  const store = new MemcachedStore({
    host: name,
    port: newcomer.port,
    dnsServers: [dns.address],
    refreshInterval,
    logger: quiet,
  });
  await store.ready();
  let stop = false;
  let i = 0;
  const load = Promise.all(
    Array.from({ length: 8 }, async () => {
      while (!stop) {
        await store.get(`join:${i++ % 1000}`);
        // Gets that resolve without I/O (no member reachable) must not starve the timers.
        if (i % 16 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
    }),
  );
  await sleep(100);
  const t0 = performance.now();
  dns.setA(
    name,
    [...live, newcomer].map((m) => m.host),
  );
  let firstRequestMs = NaN;
  const deadline = t0 + refreshInterval * 3 + 2000;
  while (performance.now() < deadline) {
    const stats = store.stats().members.find((m) => m.member === newcomer.address);
    if (stats && stats.ops > 0) {
      firstRequestMs = performance.now() - t0;
      break;
    }
    await sleep(1);
  }
  stop = true;
  await load;
  await store.disconnect();
  return { firstRequestMs, refreshInterval };
}

/**
 * The full stack under 64 concurrent callers (half gets, half sets) while one of its three
 * members is killed (SIGKILL): caller-visible errors (rejections) and what they saw instead.
 */
async function memberKill(live, victimHost, durationMs) {
  const victim = await startMemcached(victimHost, live[0].port);
  const members = [live[0], live[1], victim];
  const app = await NestFactory.createApplicationContext(
    K8sModule.forRoot({
      cache: { host: members.map((m) => m.address).join(','), namespace: 'kill' },
    }),
    { logger: false },
  );
  const service = app.get(CacheService);
  for (let i = 0; i < 1000; i++) await service.set(`kill:${i}`, i);
  let misses = 0;
  const killAt = setTimeout(() => victim.kill(), durationMs / 3);
  const run = await measure(
    async (i) => {
      const key = `kill:${i % 1000}`;
      if (i % 2 === 0) {
        if ((await service.get(key)) === undefined) misses++;
      } else await service.set(key, i);
    },
    64,
    durationMs,
  );
  clearTimeout(killAt);
  const ring = service.stats().pool.ring;
  await app.close();
  return { ops: run.ops, errors: run.errors, misses, ringAfter: ring.length, durationMs };
}

/**
 * `operations` gets and sets at concurrency 64 with 100 member-list refreshes spread over them
 * (DNS alternates between 3 and 4 members): RSS after GC and open sockets, early and at the end.
 */
async function longRun(dns, live, extra, operations) {
  const name = 'long.bench';
  const three = live.map((m) => m.host);
  const four = [...three, extra.host];
  dns.setA(name, three);
  const store = new MemcachedStore({
    host: name,
    port: extra.port,
    dnsServers: [dns.address],
    refreshInterval: 0,
    logger: quiet,
  });
  await store.ready();
  const refreshes = 100;
  const every = Math.floor(operations / refreshes);
  const snapshot = () => {
    collectGarbage();
    return { rssMb: process.memoryUsage().rss / 2 ** 20, sockets: openSockets() };
  };
  let next = 0;
  let refreshed = 0;
  let errors = 0;
  let early;
  const value = 'r'.repeat(100);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < operations) {
        const i = next++;
        if ((i + 1) % every === 0 && refreshed < refreshes) {
          refreshed++;
          dns.setA(name, refreshed % 2 ? four : three);
          await store.refresh();
        }
        try {
          if (i & 1) await store.set(`long:${i % 10_000}`, value);
          else await store.get(`long:${i % 10_000}`);
        } catch {
          errors++;
        }
        // First snapshot after warm-up (a tenth of the run), when pools and JIT are settled.
        if (i === Math.floor(operations / 10)) early = { at: i, ...snapshot() };
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const end = { at: operations, ...snapshot() };
  dns.setA(name, three);
  await store.refresh();
  const settled = snapshot();
  await store.disconnect();
  return { operations, refreshes: refreshed, seconds, errors, early, end, settled };
}

export async function scaleFigures({ dns, live, spareHosts, quick }) {
  progress('DNS lookups during a failure storm');
  const storm = await dnsStorm(dns, live, spareHosts.dead);
  progress('time from DNS to first request on a new member');
  const joiner = await startMemcached(spareHosts.join, live[0].port);
  const join = await newMemberLatency(dns, live, joiner, 1000);
  progress('member killed under load');
  const kill = await memberKill(live, spareHosts.victim, quick ? 1500 : 4000);
  progress('long run: memory and sockets');
  const long = await longRun(dns, live, joiner, quick ? 50_000 : 1_000_000);
  joiner.kill();
  return { storm, join, kill, long };
}
