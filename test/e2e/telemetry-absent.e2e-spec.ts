import { execFile } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memcachedAvailable, startMemcached, stopAllMemcached } from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { ROOT } from '../support/run-command.js';

// This file's loopback range: 127.0.48.x.

/**
 * Runs as an app that has every dependency but `@opentelemetry/api`: a copy of the built package
 * in node_modules/nestjs-k8s (a copy, not a link, so its imports resolve from the app's
 * node_modules) and links to the repository's other packages.
 */
const CONSUMER = `
import { createRequire } from 'node:module';
import Keyv from 'keyv';
import { MemcachedStore } from 'nestjs-k8s';

const require = createRequire(import.meta.url);
const host = process.env.MEMCACHED;
let resolvable = true;
try {
  require.resolve('@opentelemetry/api');
} catch {
  resolvable = false;
}
const store = new MemcachedStore({ host, refreshInterval: 0 });
const keyv = new Keyv({ store, namespace: 'absent' });
await keyv.set('greeting', 'hello');
const got = await keyv.get('greeting');
const off = new MemcachedStore({ host, refreshInterval: 0, telemetry: false });
await off.disconnect();
let explicit = 'no error';
try {
  new MemcachedStore({ host, refreshInterval: 0, telemetry: { recordKeys: true } });
} catch (error) {
  explicit = error.name + ': ' + error.message;
}
await store.disconnect();
const loaded = Object.keys(require.cache).filter((path) => path.includes('@opentelemetry'));
console.log(JSON.stringify({ resolvable, got, explicit, loaded }));
`;

describe.runIf(memcachedAvailable())('an app without @opentelemetry/api', () => {
  let dir: string;
  let server: MemcachedProcess;

  beforeAll(async () => {
    server = await startMemcached({ host: '127.0.48.1' });
    dir = mkdtempSync(join(tmpdir(), 'k8s-no-otel-'));
    const modules = join(dir, 'node_modules');
    mkdirSync(modules);
    for (const name of readdirSync(join(ROOT, 'node_modules'))) {
      if (name === '@opentelemetry' || name.startsWith('.')) continue;
      symlinkSync(join(ROOT, 'node_modules', name), join(modules, name));
    }
    const self = join(modules, 'nestjs-k8s');
    mkdirSync(self);
    cpSync(join(ROOT, 'package.json'), join(self, 'package.json'));
    cpSync(join(ROOT, 'dist/lib'), join(self, 'dist/lib'), { recursive: true });
    writeFileSync(join(dir, 'main.mjs'), CONSUMER);
  });

  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await stopAllMemcached();
  });

  it('imports the package, caches in memcached with telemetry at its default, and loads no OpenTelemetry', async () => {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['main.mjs'], {
      cwd: dir,
      env: { ...process.env, MEMCACHED: server.id },
      timeout: 20_000,
    });
    expect(stderr).toBe('');
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(result.resolvable).toBe(false);
    expect(result.got).toBe('hello');
    expect(result.loaded).toEqual([]);
    // Asking for telemetry without the API is a start-up error that says what to do.
    expect(result.explicit).toMatch(
      /^OtelApiMissingError: cache\.telemetry needs @opentelemetry\/api.*npm install @opentelemetry\/api/,
    );
  });
});
