// `npm run bench` (builds first): every contender × workload cell measured in a fresh Node
// process of its own, rotated, repeated; then routing, member-count, multi-process and failure
// figures, the hit ratio through membership changes, and the targets.
//
//   node bench/run.js                         full run (see RESULTS.md for its duration)
//   node bench/run.js --quick                 smoke run (about a minute; numbers mean nothing)
//   node bench/run.js --markdown FILE         also write the whole report into FILE (RESULTS.md)
//                                             and the hit-ratio chart into hit-ratio.svg beside it
//   node bench/run.js --before REF            also measure MemcachedStore as built from the git
//                                             commit REF (get and multi-get workloads), for "no slower than
//                                             before" in the same run
//   node bench/run.js --interleaved           every contender in this one process instead,
//                                             rotated rounds (quicker; contenders distort each
//                                             other through the shared heap, JIT and GC)
//   node bench/run.js --reps N                repetitions per cell (default 3; --quick 1)
//   node bench/run.js --only WORKLOAD --contenders a,b --reps N
//                                             just those contenders (and the baseline) on one
//                                             workload, one table, no other figure: a focused A/B
//   node bench/run.js --only stampede [--contenders ours-swr,peer-stack]
//                                             just the stampede table (see bench/stampede.js)
//
// Members are memcached processes on 127.0.30.x (one port shared by all, as behind one DNS
// name); DNS answers come from a small dns2 server on 127.0.0.1. Everything started is
// stopped by pid at the end, on errors and on signals.
import { cpus, loadavg } from 'node:os';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as prettier from 'prettier';
import { buildBefore } from './before.js';
import { CONTENDERS, WORKLOADS } from './contenders.js';
import { hitRatioFigures, renderHitRatioSvg } from './hit-ratio.js';
import { runIsolated } from './isolated.js';
import { memberFigures } from './members.js';
import { podFigures } from './pods.js';
import { renderFocused, renderReport } from './report.js';
import { routingFigures, scaleFigures } from './scale.js';
import { STAMPEDE_CONTENDERS, renderStampede, stampedeFigures } from './stampede.js';
import {
  commonFreePort,
  memcachedVersion,
  progress,
  runMain,
  startDns,
  startMemcached,
  stopAll,
} from './support.js';
import { CELLS, runInterleaved } from './throughput.js';

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name) => {
  const index = args.indexOf(name);
  if (index < 0) return undefined;
  if (!args[index + 1] || args[index + 1].startsWith('--'))
    throw new Error(`${name} needs a value`);
  return args[index + 1];
};
const quick = flag('--quick');
const markdownFile = option('--markdown');
const beforeRef = option('--before');

const QUICK_CELLS = ['get-hit c1', 'get-hit c64', 'set-100 c64', 'mget-100 c1'];
const settings = {
  mode: flag('--interleaved') ? 'interleaved' : 'isolated',
  // A fresh process starts with a cold JIT: the warm-up runs in the measuring process.
  ...(quick
    ? { reps: 1, durationMs: 100, warmupMs: 50, parallel: 2 }
    : { reps: 3, durationMs: 1000, warmupMs: 500 }),
  // --quick keeps one cell per kind of op, so CI sees every table within about a minute.
  cells: quick
    ? CELLS.filter((c) => QUICK_CELLS.includes(`${c.workload} c${c.concurrency}`))
    : CELLS,
};
if (option('--reps')) settings.reps = Number(option('--reps'));
if (!(Number.isInteger(settings.reps) && settings.reps > 0 && settings.reps <= 100)) {
  throw new Error('--reps takes an integer from 1 to 100');
}
const only = option('--only');
const stampedeOnly = only === 'stampede';
if (only && !stampedeOnly) {
  if (!WORKLOADS.some((w) => w.id === only)) {
    throw new Error(`--only takes one of ${WORKLOADS.map((w) => w.id).join(', ')}`);
  }
  settings.cells = CELLS.filter((c) => c.workload === only);
}
const chosen = option('--contenders')?.split(',');
for (const id of chosen ?? []) {
  if (
    stampedeOnly
      ? !STAMPEDE_CONTENDERS.some((c) => c.id === id)
      : !CONTENDERS.some((c) => c.id === id)
  ) {
    throw new Error(`--contenders takes ids of ${CONTENDERS.map((c) => c.id).join(', ')}`);
  }
}
if (chosen?.includes('store-before') && !beforeRef)
  throw new Error('store-before needs --before REF');

/** The baseline always; then the chosen ones, or the main contenders (and with --before the issue-7 rows). */
function contenderIds() {
  const wanted = chosen
    ? new Set(chosen)
    : new Set(
        CONTENDERS.filter(
          (c) =>
            c.group !== 'detail' ||
            (beforeRef && ['store-off', 'store-warmup', 'store-before'].includes(c.id)),
        ).map((c) => c.id),
      );
  return CONTENDERS.filter((c) => c.group === 'baseline' || wanted.has(c.id)).map((c) => c.id);
}

const MEMBER_HOSTS = ['127.0.30.1', '127.0.30.2', '127.0.30.3'];
const SPARE_HOSTS = { join: '127.0.30.4', dead: '127.0.30.5', victim: '127.0.30.6' };

async function main() {
  const started = performance.now();
  const load = loadavg()[0];
  const version = memcachedVersion();
  const port = await commonFreePort([...MEMBER_HOSTS, ...Object.values(SPARE_HOSTS)]);
  progress(`starting ${MEMBER_HOSTS.length} memcached members on port ${port}`);
  const live = await Promise.all(MEMBER_HOSTS.map((host) => startMemcached(host, port)));
  const servers = live.map((m) => m.address);
  const dns = await startDns();
  const before = beforeRef ? buildBefore(beforeRef) : undefined;
  try {
    if (stampedeOnly) {
      const lines = [];
      renderStampede(
        (line = '') => lines.push(line),
        await stampedeFigures({ servers, quick, ids: chosen }),
      );
      process.stdout.write(`${lines.join('\n')}\n`);
      return;
    }
    const ids = contenderIds();
    const run = settings.mode === 'isolated' ? runIsolated : runInterleaved;
    const throughput = await run(ids, servers, { ...settings, before });
    if (only) {
      process.stdout.write(renderFocused(throughput, settings, before));
      return;
    }
    const stampede = await stampedeFigures({ servers, quick });
    const routing = routingFigures({ quick });
    const members = await memberFigures({ quick });
    const pods = await podFigures({ live, quick });
    const scale = await scaleFigures({ dns, live, spareHosts: SPARE_HOSTS, quick });
    const hitRatio = await hitRatioFigures({ dns, quick });
    const report = renderReport({
      throughput,
      stampede,
      routing,
      members,
      pods,
      scale,
      hitRatio,
      settings,
      quick,
      before: before && { ref: before.ref },
      machine: {
        cores: cpus().length,
        cpu: cpus()[0]?.model.trim() ?? 'unknown',
        node: process.version,
        memcached: version,
        load,
      },
      command: `node bench/run.js ${args.join(' ')}`.trim(),
      seconds: (performance.now() - started) / 1000,
    });
    process.stdout.write(report);
    if (markdownFile) {
      await writeMarkdown(markdownFile, report);
      const chart = join(dirname(markdownFile), 'hit-ratio.svg');
      writeFileSync(
        chart,
        renderHitRatioSvg(
          hitRatio,
          `Hit ratio through membership changes${quick ? ' (--quick)' : ''}`,
        ),
      );
      progress(`wrote ${chart}`);
    }
  } finally {
    await dns.close();
    stopAll();
    before?.remove();
  }
}

/** Writes the whole report into `file`, formatted as `npm run lint` (prettier --check) expects. */
async function writeMarkdown(file, report) {
  const options = (await prettier.resolveConfig(file)) ?? {};
  writeFileSync(file, await prettier.format(report, { ...options, filepath: file }));
  progress(`wrote ${file}`);
}

await runMain(main);
