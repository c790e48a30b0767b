// `npm run test:flakes`: the whole suite several times in a row, each run in a shuffled order
// under its own printed seed, beside a busy process that keeps one core at 100 % (Debian's
// `stress-ng --cpu 1` when installed, else a Node busy loop), then a table of the failures per
// run. A flaky test shows up here instead of in CI; the fix is its cause, never a retry.
//
//   node scripts/flake-count.js                 5 runs, random seeds, with the busy process
//   node scripts/flake-count.js --runs 3 --seeds 11,22,33 --no-hog
//   node scripts/flake-count.js --runs 2 -- test/e2e/metrics.e2e-spec.ts   (vitest filters after --)
//
// Exits 1 when any run had a failure. Everything started is stopped by pid.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dashes = process.argv.indexOf('--');
const args = process.argv.slice(2, dashes < 0 ? undefined : dashes);
const filters = dashes < 0 ? [] : process.argv.slice(dashes + 1);
const option = (name) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const runs = Number(option('--runs') ?? 5);
if (!Number.isInteger(runs) || runs < 1 || runs > 20) throw new Error('--runs takes 1 to 20');
const seeds = option('--seeds')?.split(',').map(Number) ?? [];
if (seeds.some((seed) => !Number.isInteger(seed) || seed < 1)) {
  throw new Error('--seeds takes positive integers, comma-separated');
}
while (seeds.length < runs) seeds.push(1 + Math.floor(Math.random() * 1_000_000));

const onPath = (command) => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;

/** The busy process beside the runs: one core kept busy until it is killed. */
function startHog() {
  if (args.includes('--no-hog')) return undefined;
  const [command, hogArgs, label] = onPath('stress-ng')
    ? ['stress-ng', ['--cpu', '1', '--quiet'], 'stress-ng --cpu 1']
    : [process.execPath, ['-e', 'for (;;) {}'], 'a Node busy loop (stress-ng not installed)'];
  const hog = spawn(command, hogArgs, { stdio: 'ignore', detached: true });
  console.log(`[flakes] busy process beside the runs: ${label} (pid ${hog.pid})`);
  return hog;
}

// stress-ng forks workers: the whole process group goes, by the pid we started.
const stopHog = (hog) => hog && !hog.killed && process.kill(-hog.pid, 'SIGKILL');

/** The vitest run in progress, stopped with the rest on a signal. */
let current;

/** One full run; resolves to what vitest's JSON report says. */
function runSuite(seed, outputFile) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(
      process.execPath,
      [
        'node_modules/vitest/vitest.mjs',
        'run',
        '--sequence.shuffle',
        `--sequence.seed=${seed}`,
        '--reporter=default',
        '--reporter=json',
        `--outputFile=${outputFile}`,
        ...filters,
      ],
      {
        stdio: ['ignore', 'inherit', 'inherit'],
        env: { ...process.env, NESTJS_K8S_SKIP_BUILD: '1' },
      },
    );
    current = child;
    child.on('exit', (code) => {
      const seconds = Math.round((Date.now() - started) / 1000);
      try {
        const report = JSON.parse(readFileSync(outputFile, 'utf8'));
        const failed = report.testResults.flatMap((file) =>
          file.assertionResults
            .filter((test) => test.status === 'failed')
            .map((test) => `${file.name.replace(`${process.cwd()}/`, '')} > ${test.fullName}`),
        );
        const fileErrors = report.testResults.filter(
          (file) => file.status === 'failed' && file.assertionResults.length === 0,
        ).length;
        resolve({ seed, code, seconds, passed: report.numPassedTests, failed, fileErrors });
      } catch (error) {
        resolve({
          seed,
          code,
          seconds,
          passed: 0,
          failed: [`no report: ${error.message}`],
          fileErrors: 0,
        });
      }
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'nestjs-k8s-flakes-'));
const build = spawnSync('npm', ['run', 'build'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(1);
const hog = startHog();
const stop = () => {
  if (current && current.exitCode === null) current.kill('SIGTERM');
  stopHog(hog);
  rmSync(dir, { recursive: true, force: true });
};
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    stop();
    process.exit(130);
  });
}
const results = [];
try {
  for (const [index, seed] of seeds.slice(0, runs).entries()) {
    console.log(`[flakes] run ${index + 1}/${runs}, seed ${seed}`);
    results.push(await runSuite(seed, join(dir, `run-${index + 1}.json`)));
  }
} finally {
  stop();
}
console.log('\n| run | seed | tests passed | tests failed | files failed to load | exit | time |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const [index, r] of results.entries()) {
  console.log(
    `| ${index + 1} | ${r.seed} | ${r.passed} | ${r.failed.length} | ${r.fileErrors} | ${r.code} | ${r.seconds} s |`,
  );
}
for (const [index, r] of results.entries()) {
  for (const name of r.failed) console.log(`run ${index + 1}: failed: ${name}`);
}
process.exit(results.every((r) => r.code === 0) ? 0 : 1);
