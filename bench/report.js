// Markdown of one bench run: settings, the throughput table, routing and scale figures, hit
// ratio through membership changes, and the targets of issues 4 and 7 checked against this
// run's numbers.
import { CHANGES, formatEvents, lowestAfter, ratioBetween } from './hit-ratio.js';

const int = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const fixed = (n, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const pct = (n) => `${(100 * n).toFixed(1)} %`;

/** RSS may move by allocator noise; more than this between the two snapshots counts as growth. */
const RSS_GROWTH_LIMIT_MB = 10;

function cellOf(throughput, workload, concurrency) {
  return throughput.find((c) => c.workload.id === workload && c.concurrency === concurrency);
}

function rowOf(cell, id) {
  return cell?.rows.find((r) => r.contender.id === id);
}

function checkTargets({ throughput, routing, scale, hitRatio }) {
  const checks = [];
  const add = (target, measured, ok) => checks.push({ target, measured, ok });
  const hit64 = cellOf(throughput, 'get-hit', 64);
  const stackRatio = rowOf(hit64, 'stack')?.ratio;
  const storeRatio = rowOf(hit64, 'store')?.ratio;
  add(
    'full stack get-hit ops/s at c64 ≥ 0.8× baseline',
    `${fixed(stackRatio)}×`,
    stackRatio >= 0.8,
  );
  add(
    '`MemcachedStore` get-hit ops/s at c64 ≥ 0.9× baseline',
    `${fixed(storeRatio)}×`,
    storeRatio >= 0.9,
  );

  const behind = [];
  for (const cell of throughput) {
    const pairs = [
      ['store', 'keyv-memcache'],
      ['store', 'eden'],
      ['stack', 'peer-stack'],
    ];
    for (const [ours, peer] of pairs) {
      const a = rowOf(cell, ours);
      const b = rowOf(cell, peer);
      if (a && b && !(a.opsPerSecond > b.opsPerSecond)) {
        behind.push(
          `${ours} vs ${peer}, ${cell.workload.id} c${cell.concurrency} (${fixed(a.opsPerSecond / b.opsPerSecond)}×)`,
        );
      }
    }
  }
  add(
    'ahead of `@keyv/memcache` and `memcached` (3rd-Eden) in every workload',
    behind.length === 0
      ? `ahead in all ${throughput.length * 3} pairs`
      : `behind in: ${behind.join('; ')}`,
    behind.length === 0,
  );

  for (const id of ['store', 'stack']) {
    const mget = rowOf(cellOf(throughput, 'mget-100', 1), id)?.opsPerSecond;
    const get = rowOf(cellOf(throughput, 'get-hit', 1), id)?.opsPerSecond;
    const speedup = (100 * mget) / get;
    add(
      `100-key multi-get ≥ 10× faster than 100 sequential gets (${id}, c1)`,
      `${fixed(speedup, 1)}×`,
      speedup >= 10,
    );
  }
  for (const m of routing.movement.filter((m) => m.to > m.from)) {
    const limit = 1 / m.to + 0.03;
    add(
      `keys moved ${m.from}→${m.to} ≤ 1/${m.to} + 0.03 (${pct(limit)})`,
      pct(m.ring),
      m.ring <= limit,
    );
  }
  const worstLookup = Math.max(...routing.lookup.map((l) => l.ns));
  add(
    'ring lookup ≤ 1 µs per key',
    `${fixed(worstLookup, 0)} ns (worst ring size)`,
    worstLookup <= 1000,
  );
  const rebuild300 = routing.rebuild.find((r) => r.size === 300).ms;
  add('ring rebuild for 300 members ≤ 50 ms', `${fixed(rebuild300)} ms`, rebuild300 <= 50);
  add(
    '≤ 1 DNS lookup per rate-limit window during a failure storm',
    `${scale.storm.maxPerWindow} at most (${scale.storm.lookups} in total)`,
    scale.storm.maxPerWindow <= 1,
  );
  add(
    'zero caller-visible errors during a member kill',
    String(scale.kill.errors),
    scale.kill.errors === 0,
  );
  const { early, settled } = scale.long;
  const rssGrowth = settled.rssMb - early.rssMb;
  add(
    `RSS and sockets do not grow over the long run (RSS +≤ ${RSS_GROWTH_LIMIT_MB} MB)`,
    `RSS ${fixed(rssGrowth, 1)} MB, sockets ${settled.sockets - early.sockets}`,
    rssGrowth <= RSS_GROWTH_LIMIT_MB && settled.sockets <= early.sockets,
  );
  checks.push(...checkIssue7({ throughput, hitRatio }));
  return checks;
}

/** Seconds after the change the issue-7 hit-ratio targets look at (shorter in --quick). */
const HIT_WINDOW_S = 10;

function checkIssue7({ throughput, hitRatio }) {
  const checks = [];
  const add = (target, measured, ok) => checks.push({ target, measured, ok });
  const byId = new Map(hitRatio.series.map((s) => [s.id, s]));
  const window = Math.min(HIT_WINDOW_S, hitRatio.settings.afterMs / 1000);
  const first = (id) => ratioBetween(byId.get(id).buckets, 0, window);
  add(
    `warm-up on: hit ratio over the first ${window} s after 3 → 4 members ≥ 95 %`,
    `${pct(first('scale-on'))} (off: ${pct(first('scale-off'))})`,
    first('scale-on') >= 0.95,
  );
  add(
    `\`replicas: 2\`: hit ratio over the first ${window} s after 1 of 4 members is killed ≥ 95 %`,
    `${pct(first('kill-r2'))} (replicas 1: ${pct(first('kill-r1'))})`,
    first('kill-r2') >= 0.95,
  );
  const getPath = (id, reference, limit, target) => {
    const ratios = [1, 64].map((concurrency) => {
      const cell = cellOf(throughput, 'get-hit', concurrency);
      const a = rowOf(cell, id);
      const b = rowOf(cell, reference);
      return {
        concurrency,
        ops: a && b ? a.opsPerSecond / b.opsPerSecond : NaN,
        cpu: a && b ? b.cpuPerOp / a.cpuPerOp : NaN,
      };
    });
    add(
      `${target} (get hit ops/s ≥ ${limit}× ${reference === 'store-before' ? 'the store built from `--before`' : 'warm-up and replicas off (no `--before` given)'})`,
      ratios
        .map((r) => `c${r.concurrency} ${fixed(r.ops)}× (by CPU µs/op ${fixed(r.cpu)}×)`)
        .join('; '),
      ratios.every((r) => r.ops >= limit),
    );
  };
  const hasBefore = throughput.some((cell) => rowOf(cell, 'store-before'));
  if (hasBefore) {
    getPath(
      'store-off',
      'store-before',
      0.98,
      'get path with warm-up and replicas off no slower than before',
    );
  } else {
    add(
      'get path with warm-up and replicas off no slower than before (≥ 0.98×)',
      'not measured: run with `--before <commit before issue 7>`',
      null,
    );
  }
  getPath(
    'store-warmup',
    hasBefore ? 'store-before' : 'store-off',
    0.95,
    'get path with warm-up on and no membership change',
  );
  return checks;
}

function renderHitRatio(out, { settings, series }) {
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

export function renderReport({
  throughput,
  routing,
  scale,
  hitRatio,
  settings,
  quick,
  machine,
  command,
  seconds,
}) {
  const lines = [];
  const out = (line = '') => lines.push(line);
  out(
    `## Run of ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC${quick ? ' (--quick: smoke only, numbers mean nothing)' : ''}`,
  );
  out();
  out(
    `- Machine: ${machine.cores} cores (${machine.cpu}), Node ${machine.node}, ${machine.memcached}`,
  );
  out(`- Command: \`npm run build && ${command}\` (took ${fixed(seconds, 0)} s)`);
  out(
    `- Members: 3 memcached processes on 127.0.30.1–3 (\`-t 1 -m 256\`); the baseline talks to the first only. ` +
      `Each cell: ${settings.rounds} round(s) of ${settings.durationMs} ms per contender, rotated, after a ` +
      `${settings.warmupMs} ms warm-up; ops/s is the median over rounds, p50/p99 come from per-op samples of every round.`,
  );
  out();
  out('### Throughput and latency');
  out();
  out(
    "A multi-get op is one call for 100 keys. × baseline: ops/s ÷ the baseline's in the same cell. " +
      'CPU µs/op: CPU time of the bench process (user + system, memcached excluded) per op, median over rounds; ' +
      'lower is better, and it moves less than ops/s when other processes share the cores.',
  );
  out();
  out(
    '| workload | conc. | contender | ops/s | × baseline | p50 µs | p99 µs | CPU µs/op | CPU × baseline |',
  );
  out('|---|--:|---|--:|--:|--:|--:|--:|--:|');
  for (const cell of throughput) {
    for (const row of cell.rows) {
      out(
        `| ${cell.workload.label} | ${cell.concurrency} | ${row.contender.label} | ${int(row.opsPerSecond)} | ` +
          `${fixed(row.ratio)}${row.errors ? ` (${row.errors} errors)` : ''} | ${fixed(row.p50, 0)} | ${fixed(row.p99, 0)} | ` +
          `${fixed(row.cpuPerOp, 1)} | ${fixed(row.cpuRatio)} |`,
      );
    }
  }
  out();
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
  renderHitRatio(out, hitRatio);
  out('### Targets (from this run)');
  out();
  out('| target | measured | met |');
  out('|---|---|:-:|');
  for (const c of checkTargets({ throughput, routing, scale, hitRatio })) {
    out(`| ${c.target} | ${c.measured} | ${c.ok === null ? 'n/a' : c.ok ? 'yes' : '**no**'} |`);
  }
  out();
  return `${lines.join('\n')}\n`;
}
