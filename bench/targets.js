// The targets of the issues behind this bench, checked against one run's figures.
import { ratioBetween } from './hit-ratio.js';

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

/** Every target with what this run measured and whether it is met (`null`: not measured). */
export function checkTargets({ throughput, stampede, routing, scale, hitRatio }) {
  const checks = [];
  const add = (target, measured, ok) => checks.push({ target, measured, ok });
  checks.push(...checkIssue14(throughput));
  checks.push(...checkIssue24(throughput, stampede));
  const storeRatio = rowOf(cellOf(throughput, 'get-hit', 64), 'store')?.ratio;
  add(
    '`MemcachedStore` get-hit ops/s at c64 ≥ 0.9× baseline',
    `${fixed(storeRatio)}×`,
    known(storeRatio) && storeRatio >= 0.9,
  );

  const behind = [];
  for (const cell of throughput) {
    const pairs = [
      ['store', 'keyv-memcache'],
      ['store', 'eden'],
      ['store', 'memcache'],
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
    'ahead of `@keyv/memcache`, `memcached` (3rd-Eden) and `memcache` 1.10 in every workload',
    behind.length === 0
      ? `ahead in all ${throughput.length * 4} pairs`
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
      known(speedup) && speedup >= 10,
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
export const HIT_WINDOW_S = 10;

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
    const bothMeasured = ratios.every((r) => Number.isFinite(r.ops));
    add(
      `${target} (get hit ops/s ≥ ${limit}× ${reference === 'store-before' ? 'the store built from `--before`' : 'warm-up and replicas off (no `--before` given)'})`,
      bothMeasured
        ? ratios
            .map((r) => `c${r.concurrency} ${fixed(r.ops)}× (by CPU µs/op ${fixed(r.cpu)}×)`)
            .join('; ')
        : 'not measured: run with `--before <commit before issue 7>`',
      bothMeasured ? ratios.every((r) => r.ops >= limit) : null,
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

/**
 * The targets of issue 24: the stampede with leases (and stale-while-revalidate), and the meta
 * path no slower than the text path (CPU per op, `store` against `store-text`).
 */
function checkIssue24(throughput, stampede) {
  const checks = [];
  const add = (target, measured, ok) => checks.push({ target, measured, ok });
  const row = (id) => stampede?.rows.find((r) => r.contender.id === id);
  const s = stampede?.settings;
  const shape = s
    ? `P = ${s.pods}, C = ${s.callers}, TTL ${s.ttl / 1000} s, loader ${s.loaderMs} ms, ${s.durationMs / 1000} s`
    : '';
  for (const id of ['ours-lease', 'ours-swr']) {
    const r = row(id);
    add(
      `stampede (${shape}), ${id}: ≤ 1.5 loader calls per expiry window fleet-wide`,
      r
        ? `${fixed(r.perWindow)} (${r.loaderCalls} calls; peer stack ${fixed(row('peer-stack')?.perWindow)}, leases off ${fixed(row('ours-off')?.perWindow)})`
        : 'not measured',
      r ? r.perWindow <= 1.5 : null,
    );
  }
  const swr = row('ours-swr');
  add(
    'stampede, stale-while-revalidate: calls waiting for a loader after the first fill ≤ 25 % of the first fill',
    swr
      ? `${swr.waitedAfter} after, ${swr.waitedFirst} on the first fill (peer stack: ${row('peer-stack')?.waitedAfter} after)`
      : 'not measured',
    swr ? swr.waitedAfter <= 0.25 * swr.waitedFirst : null,
  );
  const ours = (stampede?.rows ?? []).filter((r) => r.contender.id.startsWith('ours'));
  add(
    'stampede: 0 errors and 0 wrong values (ours)',
    ours.length
      ? ours.map((r) => `${r.contender.id} ${r.errors}/${r.wrong}`).join(', ')
      : 'not measured',
    ours.length ? ours.every((r) => r.errors === 0 && r.wrong === 0) : null,
  );
  for (const [workload, concurrency] of [
    ['get-hit', 1],
    ['get-hit', 64],
    ['mget-100', 1],
  ]) {
    const cell = cellOf(throughput, workload, concurrency);
    const meta = rowOf(cell, 'store');
    const text = rowOf(cell, 'store-text');
    add(
      `meta path CPU per op no worse than the text path's: ${workload} c${concurrency}${workload === 'mget-100' ? ' (multi-gets go as text unless `staleOnDelete`: `store-meta-mget` shows the pipeline)' : ''}`,
      meta && text
        ? `${fixed(meta.cpu.median, 1)} µs (${fixed(meta.cpu.min, 1)}–${fixed(meta.cpu.max, 1)}) vs ${fixed(text.cpu.median, 1)} µs (${fixed(text.cpu.min, 1)}–${fixed(text.cpu.max, 1)})`
        : 'not measured (`store-text` not in this run)',
      meta && text ? meta.cpu.median <= text.cpu.median : null,
    );
  }
  return checks;
}

/** `null` (not measured in this run) for a missing figure, else `true`. */
const known = (n) => (Number.isFinite(n) ? true : null);

/** The targets of issue 14: the single get at c1 and the multi-get, against the baseline. */
function checkIssue14(throughput) {
  const checks = [];
  const add = (target, value, ok) => checks.push({ target, measured: value, ok });
  const hit1 = cellOf(throughput, 'get-hit', 1);
  const raw1 = rowOf(hit1, 'raw');
  const stack1 = rowOf(hit1, 'stack');
  const p50Ratio = stack1 && raw1 ? stack1.p50 / raw1.p50 : NaN;
  add(
    '`CacheService` get hit at c1 ≥ 0.9× baseline ops/s, p50 within 10 %',
    `${fixed(stack1?.ratio)}× ops/s (${fixed(stack1?.ops.min / raw1?.ops.max)}–${fixed(stack1?.ops.max / raw1?.ops.min)}× across repetitions), p50 ${fixed(stack1?.p50, 0)} vs ${fixed(raw1?.p50, 0)} µs (${fixed(100 * (p50Ratio - 1), 0)} %)`,
    known(p50Ratio) && stack1.ratio >= 0.9 && p50Ratio <= 1.1,
  );
  // With `--contenders stack-1`: the same stack on the baseline's one member, which tells the
  // layers' cost from the spreading's (at c1 each get wakes another memcached process).
  const single = rowOf(hit1, 'stack-1');
  if (single && raw1) {
    add(
      '(the same, `CacheService` on 1 member like the baseline: not a target, the split of the gap)',
      `${fixed(single.ratio)}× ops/s, p50 ${fixed(single.p50, 0)} vs ${fixed(raw1.p50, 0)} µs`,
      null,
    );
  }
  const stack64 = rowOf(cellOf(throughput, 'get-hit', 64), 'stack')?.ratio;
  add(
    '`CacheService` get hit at c64 ≥ 1.3× baseline ops/s',
    `${fixed(stack64)}×`,
    known(stack64) && stack64 >= 1.3,
  );
  // CPU per call: the baseline's ÷ ours, so ≥ 0.9× means at most 1/0.9 of its CPU.
  const mget = cellOf(throughput, 'mget-100', 1);
  const cpuOf = (id) => rowOf(mget, id)?.cpuPerOp;
  const byCpu = (a, b) => cpuOf(b) / cpuOf(a);
  add(
    '100-key multi-get through `MemcachedStore` at c1 ≥ 0.9× baseline and ≥ 1.3× 3rd-Eden (CPU per call)',
    `${fixed(byCpu('store', 'raw'))}× baseline, ${fixed(byCpu('store', 'eden'))}× 3rd-Eden (${fixed(cpuOf('store'), 0)} µs vs ${fixed(cpuOf('raw'), 0)} and ${fixed(cpuOf('eden'), 0)})`,
    known(byCpu('store', 'eden')) && byCpu('store', 'raw') >= 0.9 && byCpu('store', 'eden') >= 1.3,
  );
  add(
    '100-key multi-get through `CacheService` at c1 ≥ 0.7× baseline (CPU per call)',
    `${fixed(byCpu('stack', 'raw'))}× (${fixed(cpuOf('stack'), 0)} µs vs ${fixed(cpuOf('raw'), 0)})`,
    known(byCpu('stack', 'raw')) && byCpu('stack', 'raw') >= 0.7,
  );
  return checks;
}
