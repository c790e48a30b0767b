import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/run-command.js';

/**
 * The package is ESM; a CommonJS Nest app must still compile against its types and load it
 * (`require` of ESM, Node >= 20.19). The sample is the ESM consumer.
 */
describe('a CommonJS consumer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'k8s-cjs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('type-checks with module nodenext and runs with the in-memory cache', () => {
    cpSync(join(ROOT, 'test/fixtures/cjs-consumer'), dir, { recursive: true });
    // An installed copy as a user has it: node_modules/nestjs-k8s plus its peers.
    const modules = join(dir, 'node_modules');
    mkdirSync(modules);
    for (const name of readdirSync(join(ROOT, 'node_modules'))) {
      symlinkSync(join(ROOT, 'node_modules', name), join(modules, name));
    }
    symlinkSync(ROOT, join(modules, 'nestjs-k8s'));

    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    execFileSync(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8' });
    const output = execFileSync(process.execPath, [join(dir, 'out/main.js')], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, CACHE_HOST: '' },
    });
    expect(output.trim()).toBe('cjs: hello from CommonJS\ncache health: up');
  });
});
