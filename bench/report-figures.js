// The figure sections of bench/RESULTS.md other than the throughput table: routing, pool
// size, several app processes, failures, and the hit ratio through membership changes.
import { CHANGES, formatEvents, lowestAfter, ratioBetween } from './hit-ratio.js';
import { HIT_WINDOW_S } from './targets.js';

export const int = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
export const fixed = (n, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
export const pct = (n) => `${(100 * n).toFixed(1)} %`;

export function renderRouting(out, routing) {
  out('### Routing');
  out();
  out('| figure | value |');
  out('|---|--:|');
  for (const l of routing.lookup)
    out(
      `| ring lookup per key (MD5 + binary search), ${l.size} members, best of 5 passes | ${fixed(l.ns, 0)} ns |`,
    );
  for (const r of routing.rebuild)
    out(`| ring rebuild, ${r.size} members, best of repeated builds | ${fixed(r.ms, 3)} ms |`);
  out();
  out('| members | keys moved, ketama ring | ideal | modulo placement |');
  out('|---|--:|--:|--:|');
  for (const m of routing.movement) {
    out(`| ${m.from} → ${m.to} | ${pct(m.ring)} | ${pct(m.ideal)} | ${pct(m.modulo)} |`);
  }
  out();
}

/** Pool size 3 → 30 → 100: ring, memory, sockets, throughput. */
export function renderMembers(out, { rows }) {
  out('### Pool size: 3 → 30 → 100 members');
  out();
  out(
    'Each size in a fresh process, every member used. Memory: heap and RSS after a full GC, from ' +
      'before the store was built to after every member served a key; "per member" is the growth ' +
      'from the 3-member pool, per added member. Get hit at concurrency 64 on 100 B values.',
  );
  out();
  out(
    '| members | ring lookup per key | ring rebuild | pool heap | per member | pool RSS | open sockets | per member | get hit c64 ops/s | CPU µs/op |',
  );
  out('|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
  const [first] = rows;
  for (const r of rows) {
    const perMember = r === first ? NaN : (r.heapKb - first.heapKb) / (r.n - first.n);
    out(
      `| ${r.n} | ${fixed(r.lookupNs, 0)} ns | ${fixed(r.rebuildMs, 3)} ms | ${int(r.heapKb)} KB | ` +
        `${Number.isFinite(perMember) ? `${fixed(perMember, 1)} KB` : '–'} | ${int(r.rssKb)} KB | ` +
        `${r.sockets} | ${fixed(r.sockets / r.n, 2)} | ${int(r.getHit64.opsPerSecond)} | ${fixed(r.getHit64.cpuPerOp, 1)} |`,
    );
  }
  out();
}

/** 1, 2 and 4 app processes on the same members. */
export function renderPods(out, { settings, rows, cores }) {
  out('### Several app processes on the same members');
  out();
  out(
    `Each process: the \`CacheService\` stack, ${int(settings.keysPerPod)} keys of its own set, then every ` +
      `key of every process read and checked; then the read load at concurrency 64 in every ` +
      `process at once for ${settings.durationMs} ms. CPU: the app processes' own and the 3 ` +
      `memcached processes' (from /proc) over the load, against the ${cores} cores × the time.`,
  );
  out();
  out(
    '| processes | keys read back in every process | aggregate get hit ops/s | per process | app CPU | memcached CPU | cores busy (of ' +
      `${cores}) | CPU µs per get (app + memcached) |`,
  );
  out('|--:|---|--:|--:|--:|--:|--:|--:|');
  for (const r of rows) {
    const ops = r.opsPerSecond * r.seconds;
    out(
      `| ${r.count} | ${int(r.checked - r.missing - r.wrong)} of ${int(r.checked)} (${r.missing} missing, ${r.wrong} wrong) | ` +
        `${int(r.opsPerSecond)} | ${int(r.opsPerSecond / r.count)} | ${fixed(r.appCpu)} s | ${fixed(r.memcachedCpu)} s | ` +
        `${fixed((r.appCpu + r.memcachedCpu) / r.seconds, 2)} | ${fixed((1e6 * (r.appCpu + r.memcachedCpu)) / ops, 1)} |`,
    );
  }
  out();
  const one = rows.find((r) => r.count === 1);
  const most = rows[rows.length - 1];
  out(
    `Placement agrees: every key one process set was read back with its value by every other ` +
      `(${int(rows.reduce((n, r) => n + r.checked, 0))} reads over the ${rows.length} runs). The CPU bound: ` +
      `${cores} cores give ${cores} CPU-seconds per second to the app processes and memcached ` +
      `together; one process used ${fixed((one.appCpu + one.memcachedCpu) / one.seconds, 2)} of them at ` +
      `${int(one.opsPerSecond)} gets/s, so at ${fixed((1e6 * (one.appCpu + one.memcachedCpu)) / (one.opsPerSecond * one.seconds), 1)} ` +
      `CPU µs per get this machine cannot exceed about ${int((cores * one.opsPerSecond * one.seconds) / (one.appCpu + one.memcachedCpu))} ` +
      `gets/s whatever the number of processes; ${most.count} processes reached ${int(most.opsPerSecond)}. ` +
      'On a cluster each pod has cores of its own, and the aggregate grows with the pods until memcached is the bound.',
  );
  out();
}

export function renderFailures(out, scale) {
  out('### Failure and scale');
  out();
  const { storm, join, kill, long } = scale;
  out('| figure | value |');
  out('|---|---|');
  out(
    `| DNS lookups caused by ${storm.operations} concurrent gets on a dead member (connection refused) | ` +
      `${storm.lookups} over ${fixed(storm.stormMs, 0)} ms of storm + 2 windows; at most ${storm.maxPerWindow} per ${storm.windowMs} ms window; ${storm.errors} caller errors |`,
  );
  out(
    `| member added to DNS → its first request (refreshInterval ${join.refreshInterval} ms) | ${fixed(join.firstRequestMs, 0)} ms |`,
  );
  out(
    `| member SIGKILLed during ${kill.durationMs} ms at concurrency 64 (full stack, half gets, half sets) | ` +
      `${kill.errors} caller-visible errors in ${int(kill.ops)} ops; ${int(kill.misses)} gets read a miss; ${kill.ringAfter} members left on the ring |`,
  );
  out(
    `| long run: ${int(long.operations)} ops at c64 + ${long.refreshes} refreshes (DNS alternating 3 ↔ 4 members), ${fixed(long.seconds, 1)} s | ` +
      `RSS ${fixed(long.early.rssMb, 1)} MB at ${int(long.early.at)} ops → ${fixed(long.end.rssMb, 1)} MB at the end → ` +
      `${fixed(long.settled.rssMb, 1)} MB back on 3 members; open sockets ${long.early.sockets} → ${long.end.sockets} → ${long.settled.sockets}; ${long.errors} errors |`,
  );
  out();
}

export function renderHitRatio(out, { settings, series }) {
  out('### Hit ratio through membership changes');
  out();
  out(
    `Cache-aside reads through Keyv → \`MemcachedStore\` (DNS discovery, refreshInterval ${settings.refreshInterval} ms, ` +
      `retryTimeout ${settings.retryTimeout} ms): ${int(settings.rate)} gets/s on random keys of ${int(settings.keys)} filled ones (100 B), ` +
      'a miss counted and set again as an app would after reading its database. Fresh members for each series. ' +
      `Warm-up on: \`warmupPeriod: ${settings.warmupOn}\` (the default with the default refreshInterval of 30 s); off: \`warmupPeriod: 0\`. ` +
      `The restarted member comes back ${settings.restartDelayMs / 1000} s after the kill. Chart: [hit-ratio.svg](hit-ratio.svg).`,
  );
  out();
  out('Changes at 0 s:');
  out();
  for (const [change, text] of Object.entries(CHANGES)) out(`- ${change}: ${text}.`);
  out();
  const window = Math.min(HIT_WINDOW_S, settings.afterMs / 1000);
  out(
    `| series | before | first ${window} s after | lowest ${settings.bucketMs} ms bucket after | last 2 s | ring events (s from the change) | reads dropped |`,
  );
  out('|---|--:|--:|--:|--:|---|--:|');
  const last = settings.afterMs / 1000;
  for (const s of series) {
    out(
      `| ${s.label} | ${pct(ratioBetween(s.buckets, -Infinity, 0))} | ${pct(ratioBetween(s.buckets, 0, window))} | ` +
        `${pct(lowestAfter(s.buckets))} | ${pct(ratioBetween(s.buckets, last - 2, last))} | ${formatEvents(s.events) || '–'} | ${s.dropped} |`,
    );
  }
  out();
  out('Hit ratio per second (time from the change):');
  out();
  out(`| s | ${series.map((s) => s.label).join(' | ')} |`);
  out(`|--:|${series.map(() => '--:').join('|')}|`);
  // Whole seconds from the change, so no row mixes reads from before and after it.
  for (let t = Math.floor(-settings.beforeMs / 1000); t < last; t++) {
    out(
      `| ${t} to ${t + 1} | ${series.map((s) => pct(ratioBetween(s.buckets, t, t + 1))).join(' | ')} |`,
    );
  }
  out();
}
