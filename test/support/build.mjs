// The package's build for the tests and the version matrix. Plain JS: test/compat runs it with
// node, the tests' global setup imports it.
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** What `npm run build` runs (`tsc -p tsconfig.build.json`), writing to `outDir`. */
export function compile(outDir) {
  execFileSync(
    process.execPath,
    ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json', '--outDir', outDir],
    { cwd: ROOT, stdio: 'inherit' },
  );
}

/**
 * Build dist/ as `npm run build` does, but never show a half-written file: tsc writes into a
 * staging folder inside dist/, then each file replaces its old copy with one rename, which is
 * atomic. tsc itself truncates each file before writing it, and a process loading dist/ meanwhile
 * (a command spawned by another test run in the same checkout) can import an empty module then:
 * "does not provide an export named …". Files tsc no longer writes stay, as after `npm run build`.
 */
export function buildDist() {
  const dist = join(ROOT, 'dist');
  mkdirSync(dist, { recursive: true });
  const staging = mkdtempSync(join(dist, '.staging-'));
  try {
    compile(staging);
    for (const entry of readdirSync(staging, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const from = join(entry.parentPath, entry.name);
      const to = join(dist, relative(staging, from));
      mkdirSync(dirname(to), { recursive: true });
      renameSync(from, to);
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * What `npm pack` would take, laid out in `dir` (pack there with `--ignore-scripts`):
 * package.json, the documents npm always includes, and a clean dist/ built there as `prepack`
 * does, or with `build: false` the repository's dist/lib as it is. The repository's own dist/ is
 * neither rebuilt nor deleted (`prepack` deletes it): test files may be running it.
 */
export function stagePackage(dir, { build = true } = {}) {
  for (const file of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md']) {
    copyFileSync(join(ROOT, file), join(dir, file));
  }
  if (build) compile(join(dir, 'dist'));
  else cpSync(join(ROOT, 'dist/lib'), join(dir, 'dist/lib'), { recursive: true });
}
