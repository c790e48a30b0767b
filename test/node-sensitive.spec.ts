import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/run-command.js';
import { NODE_SENSITIVE } from './node-sensitive.mjs';

// CI's second Node runs only these: a renamed or moved file must not drop out of it silently.
describe('the tests CI runs again on Node 24', () => {
  it('are files and folders that exist, each named once with its reason', () => {
    const paths = NODE_SENSITIVE.map(([path]) => path);
    expect(new Set(paths).size).toBe(paths.length);
    for (const [path, reason] of NODE_SENSITIVE) {
      expect(existsSync(join(ROOT, path)), path).toBe(true);
      expect(statSync(join(ROOT, path)).isDirectory(), path).toBe(path.endsWith('/'));
      if (!path.endsWith('/')) expect(path, path).toMatch(/^test\/e2e\/[\w.-]+\.e2e-spec\.ts$/);
      expect(reason.length, path).toBeGreaterThan(20);
    }
  });

  it('are what .ci/run hands to vitest on Node 24', () => {
    const ci = readFileSync(join(ROOT, '.ci/run'), 'utf8');
    expect(ci).toMatch(/^node_sensitive="\$\(node test\/node-sensitive\.mjs\)"$/m);
    expect(ci).toMatch(/npx vitest run --project default \$node_sensitive$/m);
  });
});
