// One pool size in this fresh process (started by bench/members.js): a `MemcachedStore` on `n`
// members given as a list (one memcached listening on every address; the bench's DNS server
// answers over UDP only, and more than 30 A records do not fit one UDP answer), every member
// used; what the pool holds (heap and RSS after GC, open sockets, from before it was built), get-hit
// throughput at concurrency 64, and the ring's lookup and rebuild time at this size. Prints one
// JSON line.
import { MemcachedStore } from '../dist/lib/index.js';
import { ringLookup, ringRebuild } from './scale.js';
import { collectGarbage, openSockets } from './support.js';
import { measureRun } from './throughput.js';

const { n, port, hosts, durationMs, warmupMs } = JSON.parse(process.argv[2] ?? 'null') ?? {};
if (!n || !port || !(hosts?.length >= n)) {
  throw new Error('usage: node bench/members-child.js <job JSON> (see bench/members.js)');
}
const quiet = { log() {}, warn() {}, error() {}, debug() {}, verbose() {} };
const snapshot = () => {
  collectGarbage();
  const { heapUsed, rss } = process.memoryUsage();
  return { heapUsed, rss, sockets: openSockets() };
};
const base = snapshot();
const store = new MemcachedStore({
  host: hosts
    .slice(0, n)
    .map((host) => `${host}:${port}`)
    .join(','),
  refreshInterval: 0,
  warmupPeriod: 0,
  logger: quiet,
});
await store.ready();
const keys = Array.from({ length: Math.max(1000, 40 * n) }, (_, i) => `member-figure:${i}`);
const value = JSON.stringify({ value: 'm'.repeat(100), expires: null });
for (let i = 0; i < keys.length; i += 100) {
  await Promise.all(keys.slice(i, i + 100).map((key) => store.set(key, value)));
}
const used = store.stats().members.filter((m) => m.ops > 0).length;
if (used !== n) throw new Error(`${n} members: only ${used} got a key of ${keys.length}`);
const after = snapshot();

const run = await measureRun((i) => store.get(keys[i % keys.length]), 64, {
  durationMs,
  warmupMs,
});

await store.disconnect();
process.stdout.write(
  `${JSON.stringify({
    n,
    heapKb: (after.heapUsed - base.heapUsed) / 1024,
    rssKb: (after.rss - base.rss) / 1024,
    sockets: after.sockets - base.sockets,
    getHit64: run,
    lookupNs: ringLookup(n, 50_000),
    rebuildMs: ringRebuild(n),
  })}\n`,
);
process.exit(0);
