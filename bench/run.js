// `npm run bench` (builds first): every contender side by side on the same real memcached
// members, interleaved, then routing and scale figures and the targets of issue 4.
//
//   node bench/run.js                         full run (about 5 minutes), markdown on stdout
//   node bench/run.js --quick                 smoke run (about 40 s; numbers mean nothing)
//   node bench/run.js --markdown FILE         also write the report into FILE, between the
//                                             lines `<!-- bench:begin -->` and
//                                             `<!-- bench:end -->` when FILE has them (the text
//                                             outside stays), and the hit-ratio chart into
//                                             hit-ratio.svg beside it
//   node bench/run.js --before REF            also measure MemcachedStore as built from the git
//                                             commit REF (get workloads), for "no slower than
//                                             before" in the same run
//
// Members are memcached processes on 127.0.30.x (one port shared by all, as behind one DNS
// name); DNS answers come from a small dns2 server on 127.0.0.1. Everything started is
// stopped by pid at the end, on errors and on signals.
import { execFileSync } from 'node:child_process';
import { cpus, tmpdir } from 'node:os';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as prettier from 'prettier';
import { hitRatioFigures, renderHitRatioSvg } from './hit-ratio.js';
import { renderReport } from './report.js';
import { routingFigures, scaleFigures } from './scale.js';
import {
  commonFreePort,
  memcachedVersion,
  progress,
  startDns,
  startMemcached,
  stopAll,
} from './support.js';
import { WORKLOADS, createContenders, runThroughput } from './throughput.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const markdownIndex = args.indexOf('--markdown');
const markdownFile = markdownIndex >= 0 ? args[markdownIndex + 1] : undefined;
if (markdownIndex >= 0 && !markdownFile) throw new Error('--markdown needs a file name');
const beforeIndex = args.indexOf('--before');
const beforeRef = beforeIndex >= 0 ? args[beforeIndex + 1] : undefined;
if (beforeIndex >= 0 && !beforeRef) throw new Error('--before needs a git commit');

const settings = quick
  ? { concurrencies: [1, 64], rounds: 1, durationMs: 40, warmupMs: 10 }
  : // Many short rounds: a median of 5 shrugs off the bursts of other processes on the cores.
    { concurrencies: [1, 64], rounds: 5, durationMs: 300, warmupMs: 100 };
// A focused comparison: `--only get-hit --rounds 15 --contenders store,store-off,store-before`
// measures those (and the baseline) alone, prints one table and skips every other figure.
const option = (name) => {
  const index = args.indexOf(name);
  if (index < 0) return undefined;
  if (!args[index + 1]) throw new Error(`${name} needs a value`);
  return args[index + 1];
};
settings.only = option('--only');
if (settings.only && !WORKLOADS.some((w) => w.id === settings.only)) {
  throw new Error(`--only takes one of ${WORKLOADS.map((w) => w.id).join(', ')}`);
}
if (option('--rounds')) settings.rounds = Number(option('--rounds'));
if (!(Number.isInteger(settings.rounds) && settings.rounds > 0 && settings.rounds <= 100)) {
  throw new Error('--rounds takes an integer from 1 to 100');
}
const onlyContenders = option('--contenders')?.split(',');

const MEMBER_HOSTS = ['127.0.30.1', '127.0.30.2', '127.0.30.3'];
const SPARE_HOSTS = { join: '127.0.30.4', dead: '127.0.30.5', victim: '127.0.30.6' };

async function main() {
  const started = performance.now();
  const version = memcachedVersion();
  const port = await commonFreePort([...MEMBER_HOSTS, ...Object.values(SPARE_HOSTS)]);
  progress(`starting ${MEMBER_HOSTS.length} memcached members on port ${port}`);
  const live = await Promise.all(MEMBER_HOSTS.map((host) => startMemcached(host, port)));
  const dns = await startDns();
  const before = beforeRef ? await buildBefore(beforeRef) : undefined;
  try {
    const everyContender = await createContenders(live, { before });
    const contenders = onlyContenders
      ? everyContender.filter((c) => c.group === 'baseline' || onlyContenders.includes(c.id))
      : everyContender;
    const throughput = await runThroughput(contenders, settings);
    for (const contender of everyContender) await contender.close();
    if (settings.only) {
      for (const cell of throughput) {
        process.stdout.write(
          `\n${cell.workload.label}, concurrency ${cell.concurrency}, ${settings.rounds} rounds\n`,
        );
        for (const row of cell.rows) {
          process.stdout.write(
            `${row.contender.label.padEnd(52)} ${Math.round(row.opsPerSecond).toString().padStart(8)} ops/s ` +
              `${row.ratio.toFixed(2)}x  ${row.cpuPerOp.toFixed(1).padStart(6)} CPU us/op\n`,
          );
        }
      }
      return;
    }
    const routing = routingFigures({ quick });
    const scale = await scaleFigures({ dns, live, spareHosts: SPARE_HOSTS, quick });
    const hitRatio = await hitRatioFigures({ dns, quick });
    const report = renderReport({
      throughput,
      routing,
      scale,
      hitRatio,
      settings,
      quick,
      machine: {
        cores: cpus().length,
        cpu: cpus()[0]?.model.trim() ?? 'unknown',
        node: process.version,
        memcached: version,
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
    if (before) rmSync(before.dir, { recursive: true, force: true });
  }
}

/**
 * `lib/` as of git commit `ref`, compiled into a temporary directory (linked to this checkout's
 * node_modules); the working tree and git state are left alone.
 */
async function buildBefore(ref) {
  progress(`building lib/ as of ${ref}`);
  const dir = mkdtempSync(join(tmpdir(), 'nestjs-k8s-before-'));
  const files = ['lib', 'tsconfig.json', 'tsconfig.build.json', 'package.json'];
  const archive = execFileSync('git', ['archive', '--format=tar', ref, ...files], {
    maxBuffer: 256 * 2 ** 20,
  });
  execFileSync('tar', ['-x', '-C', dir], { input: archive });
  symlinkSync(resolve('node_modules'), join(dir, 'node_modules'));
  execFileSync(resolve('node_modules/.bin/tsc'), ['-p', join(dir, 'tsconfig.build.json')], {
    stdio: 'inherit',
  });
  const exports = await import(pathToFileURL(join(dir, 'dist/lib/index.js')).href);
  return { ref, dir, exports };
}

/** Writes the report into `file`, formatted as `npm run lint` (prettier --check) expects. */
async function writeMarkdown(file, report) {
  const begin = '<!-- bench:begin -->';
  const end = '<!-- bench:end -->';
  const old = existsSync(file) ? readFileSync(file, 'utf8') : '';
  // Markers count only on lines of their own (the notes may quote them).
  const from = old.indexOf(`\n${begin}\n`);
  const to = old.indexOf(`\n${end}\n`, from + 1);
  const text =
    from >= 0 && to > from
      ? `${old.slice(0, from + begin.length + 2)}${report}${old.slice(to + 1)}`
      : `${begin}\n${report}${end}\n`;
  const options = (await prettier.resolveConfig(file)) ?? {};
  writeFileSync(file, await prettier.format(text, { ...options, filepath: file }));
  progress(`wrote ${file}`);
}

try {
  await main();
  // Client libraries may keep timers alive; everything we own is closed.
  process.exit(0);
} catch (error) {
  stopAll();
  console.error(error);
  process.exit(1);
}
