// `npm run test:compat`: the version matrix. Packs this repository as a user gets it, then for
// each combination in matrix.mjs builds the documentation's example app (docs/example-app.md, the
// blocks as written) in a throwaway directory, installs the package with a plain `npm install`,
// compiles it with `tsc` and runs it against real memcached members and PostgreSQL. Prints a
// table (combination × check); exits 1 when any check failed or a service is missing.
//
//   npm run test:compat [-- --only <id>[,<id>…]] [--keep] [--no-build (pack dist/ as it is)]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Processes } from '../../scripts/demo/processes.js';
import { stagePackage } from '../support/build.mjs';
import { CHECKS, runCombination } from './combination.mjs';
import { COMBINATIONS } from './matrix.mjs';
import { missingServices } from './services.mjs';

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
  },
});
const only = values.only?.split(',');
const combinations = COMBINATIONS.filter((c) => !only || only.includes(c.id));
if (!combinations.length) {
  console.error(
    `No combination named ${values.only}; there are ${COMBINATIONS.map((c) => c.id).join(', ')}.`,
  );
  process.exit(2);
}

const missing = await missingServices();
if (missing.length) {
  console.error(`test:compat needs real services; missing: ${missing.join('; ')}`);
  process.exit(1);
}

const started = Date.now();
const stamp = () => `${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s`;
const log = (line) => console.log(`${stamp()} ${line}`);

// The package as npm publishes it: built clean (as `prepack` does), then packed (`files` decides
// what is in it). Both happen in a folder of their own: `npm pack` here would run `prepack`, which
// deletes the repository's dist/ under any test run using it.
const work = mkdtempSync(join(tmpdir(), 'k8s-compat-pack-'));
const staged = join(work, 'package');
mkdirSync(staged);
log(values['no-build'] ? 'packing dist/ as it is' : 'building the package');
stagePackage(staged, { build: !values['no-build'] });
const [packed] = JSON.parse(
  execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], {
    cwd: staged,
    encoding: 'utf8',
  }),
);
const tarball = join(work, packed.filename);
log(`packed ${packed.filename}: ${packed.entryCount} files, ${Math.round(packed.size / 1024)} kB`);

const processes = new Processes();
const outcomes = [];
try {
  for (const [i, combination] of combinations.entries()) {
    outcomes.push({
      combination,
      ...(await runCombination(combination, {
        processes,
        tarball,
        subnet: 201 + i,
        keep: values.keep,
        log,
      })),
    });
    await processes.stopAll();
  }
} finally {
  await processes.stopAll();
  await Promise.all(outcomes.map((outcome) => outcome.removal));
  rmSync(work, { recursive: true, force: true });
}

printTable(outcomes);
const total = (Date.now() - started) / 1000;
console.log(`\ntest:compat: ${outcomes.length} combinations in ${total.toFixed(0)} s`);
const failures = outcomes.flatMap(({ combination, results }) =>
  [...results]
    .filter(([, r]) => !r.ok)
    .map(([check, r]) => `${combination.id} ${check}: ${r.detail}`),
);
if (failures.length) {
  console.error(`\nFAILED:\n${failures.join('\n')}`);
  process.exit(1);
}

function printTable(rows) {
  const header = ['combination', 'node', ...CHECKS, 'time'];
  const cells = rows.map(({ combination, results, node, seconds }) => [
    combination.id,
    node,
    ...CHECKS.map((check) => {
      const result = results.get(check);
      return result === undefined ? '-' : result.ok ? 'ok' : 'FAIL';
    }),
    `${seconds.toFixed(0)} s`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i].length)));
  const line = (row) => `| ${row.map((cell, i) => cell.padEnd(widths[i])).join(' | ')} |`;
  console.log(`\n${line(header)}\n| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`);
  for (const row of cells) console.log(line(row));
}
