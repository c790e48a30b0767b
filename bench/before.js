// `lib/` as built from an earlier commit, for "no slower than before" in the same run.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { progress } from './support.js';

/**
 * `lib/` as of git commit `ref`, compiled into a temporary directory (linked to this checkout's
 * node_modules); the working tree and git state are left alone. Returns where its index is, for
 * the measuring processes to import, and `remove()`.
 */
export function buildBefore(ref) {
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
  return {
    ref,
    dir,
    index: pathToFileURL(join(dir, 'dist/lib/index.js')).href,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
