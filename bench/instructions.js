// Instructions per operation (get hits, or `--workload set-100`), counted by valgrind's callgrind (instructions, not seconds: nearly the
// same count whatever else the machine does). Each count is one fresh `node --predictable
// bench/get-instructions.js` process under callgrind; two sizes of run are subtracted, so
// start-up, building and filling drop out:
//
//   npm run build && node bench/instructions.js [--before REF] [--contenders store,stack]
//     [--workload get-hit] [--concurrency 1,64] [--gets 2000,10000] [--reps 3] [--jobs 1]
//
// Per operation = (median count of the long runs − median of the short runs) / (difference in
// operations);
// the spread is the least and greatest of that over every long/short pair. `--predictable`
// (V8's compiler and collector on the main thread, no memory reducer, a fixed GC schedule):
// with background threads the counts of one size were seen to differ by over 100 million
// instructions between runs, with --predictable by up to 30 million (start-up; timers fire by
// the clock, and valgrind's clock depends on the machine's load), hence the long second size.
// Members: 3 memcached processes on 127.0.41.x, started and stopped here by pid.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildBefore } from './before.js';
import { commonFreePort, median, progress, runMain, startMemcached, stopAll } from './support.js';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(name);
  if (index < 0) return fallback;
  if (!args[index + 1] || args[index + 1].startsWith('--'))
    throw new Error(`${name} needs a value`);
  return args[index + 1];
};
const list = (text) => text.split(',').filter(Boolean);
const numbers = (text) => list(text).map(Number);

const beforeRef = option('--before');
const contenders = list(option('--contenders', beforeRef ? 'store,store-before' : 'store'));
const concurrencies = numbers(option('--concurrency', '1,64'));
const [shortRun, longRun] = numbers(option('--gets', '2000,10000'));
const reps = Number(option('--reps', '3'));
const workload = option('--workload', 'get-hit');
const jobs = Number(option('--jobs', '1'));
if (!(longRun > shortRun && shortRun > 0))
  throw new Error('--gets takes SHORT,LONG with LONG > SHORT');
if (contenders.includes('store-before') && !beforeRef)
  throw new Error('store-before needs --before REF');

const HOSTS = ['127.0.41.1', '127.0.41.2', '127.0.41.3'];

/** Instructions callgrind counted for one process of `gets` gets. */
function count(id, servers, gets, concurrency, before) {
  const child = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      '--callgrind-out-file=/dev/null',
      process.execPath,
      '--predictable',
      '--predictable-gc-schedule',
      'bench/get-instructions.js',
      id,
      servers.join(','),
      String(gets),
      String(concurrency),
      workload,
      ...(before ? [fileURLToPath(before.index)] : []),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      const collected = /Collected : (\d+)/.exec(stderr);
      if (code !== 0 || !collected)
        reject(
          new Error(`${id} ${gets} gets c${concurrency}: exit ${code}\n${stderr.slice(-2000)}`),
        );
      else resolve(Number(collected[1]));
    });
  });
}

/** Runs `tasks` (functions returning promises) `jobs` at a time, results in order. */
async function pooled(tasks) {
  const results = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const index = next++;
      results[index] = await tasks[index]();
    }
  };
  await Promise.all(Array.from({ length: jobs }, worker));
  return results;
}

const group = (n) => Math.round(n).toLocaleString('en-US');

async function main() {
  const port = await commonFreePort(HOSTS);
  progress(`starting ${HOSTS.length} memcached members on port ${port}`);
  const members = await Promise.all(HOSTS.map((host) => startMemcached(host, port)));
  const servers = members.map((m) => m.address);
  const before = beforeRef ? buildBefore(beforeRef) : undefined;
  try {
    // Rotated: every repetition runs each contender and size once before the next begins.
    const plan = [];
    for (let rep = 0; rep < reps; rep++)
      for (const concurrency of concurrencies)
        for (const id of contenders)
          for (const gets of rep % 2 ? [longRun, shortRun] : [shortRun, longRun])
            plan.push({ id, gets, concurrency });
    let done = 0;
    const counts = await pooled(
      plan.map((run) => async () => {
        const total = await count(run.id, servers, run.gets, run.concurrency, before);
        progress(
          `${++done}/${plan.length} ${run.id} c${run.concurrency} ${run.gets} gets: ${group(total)}`,
        );
        return { ...run, total };
      }),
    );
    const rows = [];
    for (const concurrency of concurrencies) {
      for (const id of contenders) {
        const of = (gets) =>
          counts
            .filter((c) => c.id === id && c.concurrency === concurrency && c.gets === gets)
            .map((c) => c.total);
        const short = of(shortRun);
        const long = of(longRun);
        const perGet = (l, s) => (l - s) / (longRun - shortRun);
        const pairs = long.flatMap((l) => short.map((s) => perGet(l, s)));
        rows.push(
          `| ${id} | ${concurrency} | ${group(perGet(median(long), median(short)))} | ${group(Math.min(...pairs))}–${group(Math.max(...pairs))} | ${group(median(short))} |`,
        );
      }
    }
    const label = before ? `, store-before = lib/ at ${before.ref}` : '';
    process.stdout.write(
      [
        `Instructions per operation, ${workload} (callgrind, node ${process.version} --predictable, ${reps} run(s) of ${shortRun} and of ${longRun} operations each${label})`,
        '',
        '| contender | conc. | instructions/op | spread | whole run of the short size |',
        '| --- | ---: | ---: | ---: | ---: |',
        ...rows,
        '',
      ].join('\n'),
    );
  } finally {
    before?.remove();
    stopAll();
  }
}

await runMain(main);
