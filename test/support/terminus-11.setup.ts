import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TERMINUS_11_DIR, TERMINUS_11_VERSION } from './terminus-line.js';

/**
 * Global set-up of the `terminus-11` project: `@nestjs/terminus` 11 installed once into
 * `.cache/terminus-11` (kept between runs, as CI keeps other Node lines). It cannot be a dev
 * dependency: Terminus 11 declares `@nestjs/common ^10 || ^11` and the repository runs Nest 12,
 * so `npm ci` refuses the tree. Its peers are left out: it loads the repository's Nest, which
 * is what the indicator must work with on the Terminus line a Nest 11 app installs.
 */
export default function setup(): void {
  const manifest = join(TERMINUS_11_DIR, 'node_modules/@nestjs/terminus/package.json');
  if (existsSync(manifest)) {
    const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string };
    if (version === TERMINUS_11_VERSION) return;
  }
  mkdirSync(TERMINUS_11_DIR, { recursive: true });
  writeFileSync(join(TERMINUS_11_DIR, 'package.json'), '{ "private": true }\n');
  execFileSync(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--no-package-lock',
      '--legacy-peer-deps',
      '--omit=peer',
      `@nestjs/terminus@${TERMINUS_11_VERSION}`,
    ],
    { cwd: TERMINUS_11_DIR, stdio: 'inherit' },
  );
}
