import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer } from '../support/dns-server.js';
import type { TestDnsServer } from '../support/dns-server.js';
import {
  freePort,
  memcachedAvailable,
  startMemcached,
  stopAllMemcached,
} from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { ROOT, runSample, startSample } from '../support/run-command.js';
import { spawn } from 'node:child_process';

// This file's loopback range: 127.0.6.x.

/** Runs the fixture that boots the sample, closes it and must then exit on its own. */
function bootAndClose(env: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['test/fixtures/boot-and-close.mjs'], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    // A handle left open keeps the process alive: kill it after a generous bound and report.
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('the sample app', () => {
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'k8s-sample-'));
    env = { DATABASE_URL: join(dir, 'sample.sqlite'), CACHE_HOST: '' };
    const migrated = await runSample(['migrate'], { env });
    expect(migrated.code).toBe(0);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('serves cached endpoints on the in-memory store and stops on SIGTERM', async () => {
    const port = await freePort('127.0.0.1');
    const app = startSample([], { env: { ...env, PORT: String(port) } });
    try {
      await app.waitForOutput('Listening on port');
      const get = async (path: string) =>
        (await fetch(`http://127.0.0.1:${port}${path}`)).json() as Promise<Record<string, unknown>>;

      const first = await get('/time');
      expect(await get('/time')).toEqual(first); // served by CacheInterceptor
      const square = await get('/square/7');
      expect(square).toMatchObject({ n: 7, square: 49 });
      expect(await get('/square/7')).toEqual(square); // served by CacheService.wrap
      const items = (await get('/items')) as unknown as Array<{ name: string }>;
      expect(items.length).toBeGreaterThan(0);
      expect(await get('/cache/stats')).toEqual({ backend: 'memory', servers: [] });
    } finally {
      app.child.kill('SIGTERM');
    }
    const ended = await app.result;
    expect(ended.timedOut).toBe(false);
    expect(ended.stdout).toContain('in-memory cache');
  });

  it('app.close() leaves no handle open (in-memory store)', async () => {
    const result = await bootAndClose(env);
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('square 144');
    expect(result.stdout).toContain('backend memory');
    expect(result.stdout).toContain('closed');
    expect(result.code).toBe(0);
  });

  describe.runIf(memcachedAvailable())('with a pool discovered from DNS', () => {
    let dns: TestDnsServer;
    let servers: MemcachedProcess[];
    let cacheEnv: Record<string, string>;

    beforeAll(async () => {
      dns = await startDnsServer();
      const port = await freePort('127.0.6.1');
      servers = await Promise.all(
        [1, 2].map((i) => startMemcached({ host: `127.0.6.${i}`, port })),
      );
      dns.setA(
        'memcached.sample.local',
        servers.map((s) => s.host),
      );
      cacheEnv = {
        ...env,
        CACHE_HOST: 'memcached.sample.local',
        CACHE_PORT: String(port),
        CACHE_DNS_SERVERS: dns.address,
        CACHE_REFRESH_INTERVAL: '1000',
      };
    });

    afterAll(async () => {
      await dns?.close();
      await stopAllMemcached();
    });

    it('boots on the discovered members, stores in memcached, and app.close() leaves no handle open', async () => {
      const result = await bootAndClose(cacheEnv);
      expect(result.stderr).toBe('');
      expect(result.stdout).toContain('square 144');
      expect(result.stdout).toContain(
        `backend memcached servers ${servers
          .map((s) => s.id)
          .sort()
          .join(',')}`,
      );
      expect(result.stdout).toContain('closed');
      expect(result.code).toBe(0);
      const items = await Promise.all(
        servers.map(async (s) => Number((await s.stats()).curr_items)),
      );
      // The cached square plus the namespace's generation token on each member.
      expect(items.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1 + servers.length);
    });
  });
});
