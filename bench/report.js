// bench/RESULTS.md, whole: the fixed text, this run's settings, the throughput table with each
// cell's spread, the other figures, the targets, and the README's performance sentences.
import {
  fixed,
  int,
  renderFailures,
  renderHitRatio,
  renderMembers,
  renderPods,
  renderRouting,
} from './report-figures.js';
import { CONTENDERS_TEXT, INTRO } from './report-text.js';
import { renderStampede } from './stampede.js';
import { checkTargets } from './targets.js';

/** `12,345 (11,900–12,800)` */
const spread = ({ median, min, max }, format) =>
  `${format(median)} (${format(min)}–${format(max)})`;
const one = (n) => fixed(n, 1);

const labelOf = (contender, before) =>
  contender.id === 'store-before' && before
    ? `ours before: \`MemcachedStore\` at ${before.ref}`
    : contender.label;

/** (max − min) ÷ median of the baseline's ops/s in each cell: the noise a reader must allow. */
function baselineNoise(throughput) {
  return throughput
    .map((cell) => {
      const row = cell.rows.find((r) => r.contender.group === 'baseline');
      if (!row) return undefined;
      const width = (row.ops.max - row.ops.min) / row.ops.median;
      return `${cell.workload.label} c${cell.concurrency} ±${fixed((100 * width) / 2, 0)} %`;
    })
    .filter(Boolean)
    .join(', ');
}

function renderThroughput(out, throughput, settings, before) {
  out('### Throughput and latency');
  out();
  out(
    'ops/s and CPU µs/op: median (min–max) over the repetitions. × baseline: the ratio of the ' +
      "medians to the baseline's in the same cell (CPU: lower is better). p50/p99: median over the " +
      'repetitions of each run’s percentile.',
  );
  out();
  out(
    '| workload | conc. | contender | ops/s | × baseline | p50 µs | p99 µs | CPU µs/op | CPU × baseline |',
  );
  out('|---|--:|---|--:|--:|--:|--:|--:|--:|');
  for (const cell of throughput) {
    for (const row of cell.rows) {
      out(
        `| ${cell.workload.label} | ${cell.concurrency} | ${labelOf(row.contender, before)} | ${spread(row.ops, int)} | ` +
          `${fixed(row.ratio)}${row.errors ? ` (${row.errors} errors)` : ''} | ${fixed(row.p50, 0)} | ${fixed(row.p99, 0)} | ` +
          `${spread(row.cpu, one)} | ${fixed(row.cpuRatio)} |`,
      );
    }
  }
  out();
  out(
    `The baseline's own spread over its ${settings.reps} repetitions (half the min–max width ÷ median), ` +
      `the noise of this run: ${baselineNoise(throughput)}. A difference smaller than this is not one.`,
  );
  out();
}

/** `--only`: one table on stdout. */
export function renderFocused(throughput, settings, before) {
  const lines = [];
  for (const cell of throughput) {
    lines.push(
      `\n${cell.workload.label}, concurrency ${cell.concurrency}, ${settings.reps} repetitions (${settings.mode})`,
    );
    for (const row of cell.rows) {
      lines.push(
        `${labelOf(row.contender, before).padEnd(52)} ${spread(row.ops, int).padStart(28)} ops/s ` +
          `${row.ratio.toFixed(2)}x  ${spread(row.cpu, one).padStart(22)} CPU us/op`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The README's performance sentences, from this run (the docs owner pastes them). */
function renderReadmeSentences(out, throughput) {
  const row = (workload, concurrency, id) =>
    throughput
      .find((c) => c.workload.id === workload && c.concurrency === concurrency)
      ?.rows.find((r) => r.contender.id === id);
  const ratio = (a, b) => (a && b ? a.ops.median / b.ops.median : NaN);
  const x = (n) => `${fixed(n, 1)}×`;
  out('### For the README');
  out();
  out(
    `Measured each contender alone in its own process (median of ${row('get-hit', 64, 'raw')?.runs.length ?? 'n/a'} ` +
      `repetitions, 3 memcached members on loopback, 2 cores): through \`CacheService\` a cache hit runs at ` +
      `${int(row('get-hit', 64, 'stack')?.ops.median)} gets/s with 64 concurrent callers, ` +
      `${x(ratio(row('get-hit', 64, 'stack'), row('get-hit', 64, 'peer-stack')))} the cache-manager + Keyv + ` +
      `\`@keyv/memcache\` stack and ${x(ratio(row('get-hit', 64, 'stack'), row('get-hit', 64, 'raw')))} a raw ` +
      `\`memcache-client\` on one member; ` +
      `one caller at a time gets ${x(ratio(row('get-hit', 1, 'stack'), row('get-hit', 1, 'raw')))} of the raw ` +
      `client. \`MemcachedStore\` alone: ${x(ratio(row('get-hit', 64, 'store'), row('get-hit', 64, 'keyv-memcache')))} ` +
      `\`@keyv/memcache\` and ${x(ratio(row('get-hit', 64, 'store'), row('get-hit', 64, 'eden')))} 3rd-Eden ` +
      '`memcached` on get hits at concurrency 64. Full figures: [bench/RESULTS.md](bench/RESULTS.md).',
  );
  out();
}

export function renderReport({
  throughput,
  stampede,
  routing,
  members,
  pods,
  scale,
  hitRatio,
  settings,
  quick,
  before,
  machine,
  command,
  seconds,
}) {
  const lines = [];
  const out = (line = '') => lines.push(line);
  out(INTRO);
  out(
    `## Run of ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC${quick ? ' (--quick: smoke only, numbers mean nothing)' : ''}`,
  );
  out();
  out(
    `- Machine: ${machine.cores} cores (${machine.cpu}), Node ${machine.node}, ${machine.memcached}; ` +
      `load average ${fixed(machine.load)} at the start`,
  );
  out(`- Command: \`npm run build && ${command}\` (took ${fixed(seconds, 0)} s)`);
  out(
    `- Members: 3 memcached processes on 127.0.30.1–3 (\`-t 1 -m 256\`); the baseline talks to the first only. ` +
      (settings.mode === 'isolated'
        ? `Each cell: ${settings.reps} repetition(s), each contender in a fresh process: ${settings.warmupMs} ms warm-up, then ${settings.durationMs} ms measured; the contenders' order rotates between repetitions${settings.parallel > 1 ? `; ${settings.parallel} processes measured at a time` : ''}.`
        : `**Interleaved mode**: every contender in one process, ${settings.reps} rotated round(s) of ${settings.warmupMs} ms warm-up + ${settings.durationMs} ms per contender; the contenders distort each other.`),
  );
  out();
  renderThroughput(out, throughput, settings, before);
  renderStampede(out, stampede);
  renderMembers(out, members);
  renderPods(out, pods);
  renderRouting(out, routing);
  renderFailures(out, scale);
  renderHitRatio(out, hitRatio);
  out('### Targets (from this run)');
  out();
  out('| target | measured | met |');
  out('|---|---|:-:|');
  for (const c of checkTargets({ throughput, stampede, routing, scale, hitRatio })) {
    out(`| ${c.target} | ${c.measured} | ${c.ok === null ? 'n/a' : c.ok ? 'yes' : '**no**'} |`);
  }
  out();
  renderReadmeSentences(out, throughput);
  out(CONTENDERS_TEXT);
  return `${lines.join('\n')}\n`;
}
