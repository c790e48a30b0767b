// The isolated mode (the default): every contender × cell measured in a fresh Node process of
// its own (bench/cell.js), `reps` times, the order of the contenders rotating from one
// repetition to the next (A B C, B C A, …) so drift and other processes' bursts fall on all of
// them alike. A process loads, builds and warms up only its own contender.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { contenderById, hasWorkload } from './contenders.js';
import { progress } from './support.js';
import { summarizeCell } from './throughput.js';

const CELL_SCRIPT = fileURLToPath(new URL('./cell.js', import.meta.url));
/** A cell process that takes this much longer than its measuring is stuck: killed, run fails. */
const CELL_GRACE_MS = 60_000;

/** Runs `job` in a fresh process; resolves with the run it prints. */
function runCell(job) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CELL_SCRIPT, JSON.stringify(job)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(
      () => child.kill('SIGKILL'),
      job.warmupMs + job.durationMs + CELL_GRACE_MS,
    );
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const what = `${job.id} ${job.workload} c${job.concurrency}`;
      if (code !== 0) {
        reject(new Error(`${what}: cell process ended with ${signal ?? code}\n${stderr}`));
        return;
      }
      try {
        resolve(JSON.parse(stdout.trim().split('\n').pop()));
      } catch {
        reject(new Error(`${what}: no result on stdout\n${stdout}\n${stderr}`));
      }
    });
  });
}

/**
 * Every cell of `settings.cells` for every contender of `ids` that has its workload, `reps`
 * repetitions in fresh processes; returns the cells summarized (median and min–max).
 * `parallel` (--quick only: its numbers mean nothing anyway) runs that many processes at once.
 */
export async function runIsolated(ids, servers, settings) {
  const { cells, reps, durationMs, warmupMs, before, parallel = 1 } = settings;
  const specs = ids.map(contenderById);
  const runs = cells.map(() => new Map(ids.map((id) => [id, []])));
  const jobs = [];
  for (let rep = 0; rep < reps; rep++) {
    for (const [index, cell] of cells.entries()) {
      const present = specs.filter((s) => hasWorkload(s, cell.workload));
      for (let k = 0; k < present.length; k++) {
        const spec = present[(k + rep) % present.length];
        jobs.push({ index, rep, spec, cell });
      }
    }
  }
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < jobs.length) {
      const { index, rep, spec, cell } = jobs[next++];
      const run = await runCell({
        id: spec.id,
        workload: cell.workload,
        concurrency: cell.concurrency,
        durationMs,
        warmupMs,
        servers,
        before: spec.needsBefore ? { index: before.index } : null,
      });
      runs[index].get(spec.id).push(run);
      progress(
        `isolated: repetition ${rep + 1}/${reps}, ${cell.workload} c${cell.concurrency}, ${spec.id} ` +
          `(${next}/${jobs.length}, ${((performance.now() - started) / 1000).toFixed(0)} s)`,
      );
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return cells.map((cell, index) => summarizeCell(cell, specs, runs[index]));
}
