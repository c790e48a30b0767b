// One measured run of a contender on a workload, the summary of a cell's runs (median and
// spread per contender, ratios to the baseline), and the in-process interleaved mode
// (`--interleaved`: every contender in this process, rotated rounds; quicker, but contenders
// share one heap, JIT and GC and distort each other).
import { WORKLOADS, buildContender } from './contenders.js';
import { measure, median, progress } from './support.js';

/** The cells of the table: workload × concurrency. */
export const CELLS = [
  { workload: 'get-hit', concurrency: 1 },
  { workload: 'get-hit', concurrency: 64 },
  { workload: 'get-miss', concurrency: 1 },
  { workload: 'get-miss', concurrency: 64 },
  { workload: 'set-100', concurrency: 1 },
  { workload: 'set-100', concurrency: 64 },
  { workload: 'set-10k', concurrency: 64 },
  { workload: 'mget-100', concurrency: 1 },
  { workload: 'mget-100', concurrency: 64 },
];

/** A warm-up of `warmupMs` (JIT, sockets), then `durationMs` measured. */
export async function measureRun(op, concurrency, { durationMs, warmupMs }) {
  await measure(op, concurrency, warmupMs);
  const run = await measure(op, concurrency, durationMs);
  return {
    opsPerSecond: run.opsPerSecond,
    cpuPerOp: run.cpuPerOp,
    p50: run.samples.percentile(50),
    p99: run.samples.percentile(99),
    errors: run.errors,
  };
}

const spreadOf = (values) => ({
  median: median(values),
  min: Math.min(...values),
  max: Math.max(...values),
});

/**
 * A cell's table rows from its runs (`runsById`: contender id → runs): per contender the
 * median, min and max of ops/s and CPU µs/op over its runs, the median p50/p99, and the
 * ratios of the medians to the baseline's.
 */
export function summarizeCell({ workload, concurrency }, contenders, runsById) {
  const rows = contenders
    .filter((c) => runsById.get(c.id)?.length)
    .map((contender) => {
      const runs = runsById.get(contender.id);
      return {
        contender: { id: contender.id, label: contender.label, group: contender.group },
        runs,
        ops: spreadOf(runs.map((r) => r.opsPerSecond)),
        cpu: spreadOf(runs.map((r) => r.cpuPerOp)),
        p50: median(runs.map((r) => r.p50)),
        p99: median(runs.map((r) => r.p99)),
        errors: runs.reduce((sum, r) => sum + r.errors, 0),
      };
    });
  const baseline = rows.find((r) => r.contender.group === 'baseline');
  for (const row of rows) {
    // Kept under the old names too: the targets and the README sentences read these.
    row.opsPerSecond = row.ops.median;
    row.cpuPerOp = row.cpu.median;
    row.ratio = baseline ? row.ops.median / baseline.ops.median : NaN;
    row.cpuRatio = baseline ? row.cpu.median / baseline.cpu.median : NaN;
  }
  return { workload: WORKLOADS.find((w) => w.id === workload), concurrency, rows };
}

/**
 * The interleaved mode: every contender built in this process, then per cell `reps` rounds
 * that each run every contender once, the starting contender rotating.
 */
export async function runInterleaved(ids, servers, settings) {
  const contenders = [];
  for (const id of ids) contenders.push(await buildContender(id, servers, settings));
  const results = [];
  try {
    for (const cell of settings.cells) {
      progress(`interleaved: ${cell.workload} at concurrency ${cell.concurrency}`);
      const present = contenders.filter((c) => c.ops[cell.workload]);
      const runsById = new Map(present.map((c) => [c.id, []]));
      for (let rep = 0; rep < settings.reps; rep++) {
        for (let k = 0; k < present.length; k++) {
          const contender = present[(k + rep) % present.length];
          const run = await measureRun(contender.ops[cell.workload], cell.concurrency, settings);
          runsById.get(contender.id).push(run);
        }
      }
      results.push(summarizeCell(cell, contenders, runsById));
    }
  } finally {
    for (const contender of contenders) await contender.close();
  }
  return results;
}
