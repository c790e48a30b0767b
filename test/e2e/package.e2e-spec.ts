import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stagePackage } from '../support/build.mjs';
import { ROOT } from '../support/run-command.js';

// What `npm publish` would ship. `prepack` cleans dist/ and builds, so the package is built here
// the same way, into a directory of its own (the shared dist/ is in use by other test files),
// and packed from there with `npm pack --dry-run`.

interface Packed {
  files: string[];
  dir: string;
}

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
let packed: Packed;

beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'k8s-pack-'));
  stagePackage(dir);
  const json = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, npm_config_loglevel: 'error' },
  });
  const [result] = JSON.parse(json) as Array<{ files: Array<{ path: string }> }>;
  packed = { files: result.files.map((f) => f.path).sort(), dir };
}, 180_000);

afterAll(() => {
  if (packed) rmSync(packed.dir, { recursive: true, force: true });
});

describe('the published package', () => {
  it('holds the built library, its types and the top-level documents, nothing else', () => {
    const outside = packed.files.filter((f) => !f.startsWith('dist/lib/'));
    expect(outside.sort()).toEqual(['LICENSE', 'README.md', 'package.json']);
    expect(packed.files.filter((f) => /\.spec\.|(^|\/)(test|fixtures|sample)\//.test(f))).toEqual(
      [],
    );
    expect(packed.files.length).toBeGreaterThan(20);
  });

  it('every export and its types are in it', () => {
    const targets: string[] = [pkg.main, pkg.types];
    for (const entry of Object.values(pkg.exports as Record<string, unknown>)) {
      if (typeof entry === 'string') targets.push(entry);
      else targets.push(...Object.values(entry as Record<string, string>));
    }
    for (const target of targets) {
      expect(packed.files, target).toContain(target.replace(/^\.\//, ''));
    }
    for (const js of packed.files.filter((f) => f.endsWith('.js'))) {
      expect(packed.files, `${js} without types`).toContain(js.replace(/\.js$/, '.d.ts'));
    }
  });

  it('ships no source map without the sources it points at', () => {
    for (const file of packed.files.filter((f) => f.endsWith('.js') || f.endsWith('.d.ts'))) {
      const text = readFileSync(join(packed.dir, file), 'utf8');
      const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(text)?.[1];
      if (!url) continue;
      const map = join(file, '..', url);
      expect(packed.files, `${file} points at ${url}`).toContain(map);
      const { sources } = JSON.parse(readFileSync(join(packed.dir, map), 'utf8')) as {
        sources: string[];
      };
      for (const source of sources) {
        expect(packed.files, `${map} points at ${source}`).toContain(join(map, '..', source));
      }
    }
  });

  it("names its repository, home page and issue tracker (the registry's page links them)", () => {
    const repository = /^git\+(https:\/\/github\.com\/[\w.-]+\/[\w.-]+)\.git$/.exec(
      pkg.repository?.url ?? '',
    )?.[1];
    expect(pkg.repository?.type).toBe('git');
    expect(repository, 'repository.url').toBeDefined();
    expect(pkg.homepage).toBe(`${repository}#readme`);
    expect(pkg.bugs?.url).toBe(`${repository}/issues`);
    // The README is the one document the package ships: its links go to that repository.
    const readme = readFileSync(join(packed.dir, 'README.md'), 'utf8');
    expect(readme).toContain(`](${repository}/blob/main/docs/`);
    expect(readme).not.toMatch(/\]\((?!https:|#)/);
  });

  it('is MIT licensed, as package.json says, and publishes only what builds', () => {
    expect(pkg.license).toBe('MIT');
    expect(readFileSync(join(ROOT, 'LICENSE'), 'utf8')).toMatch(/^MIT License\n/);
    // `npm publish` builds a clean dist/ first: a stale file can never ship.
    expect(pkg.scripts.prepack).toMatch(/rmSync\('dist'.*&& npm run build$/);
  });
});
