import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  memcachedAvailable,
  startMemcached,
  stopAllMemcached,
} from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { runSample, startSample } from '../support/run-command.js';
import type { RunningCommand } from '../support/run-command.js';

// This file's loopback range: 127.0.11.10-19 (test/e2e/health.e2e-spec.ts uses 127.0.11.1-9).

/** How long the kubelet would wait before SIGKILL here: the process must be gone before. */
const GRACE_MS = 20_000;

interface Readiness {
  http: number;
  status: string;
  details: Record<string, { status: string } & Record<string, unknown>>;
}

/** `/health/ready`; http 0 once the server no longer accepts connections. */
async function readiness(port: number): Promise<Readiness> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/health/ready`);
    const body = (await response.json()) as Omit<Readiness, 'http'>;
    return { http: response.status, ...body };
  } catch {
    return { http: 0, status: 'closed', details: {} };
  }
}

/**
 * Start the built sample, wait until it listens and is ready, start a request that takes
 * `slowMs`, send SIGTERM, and watch readiness until it reports shutting down (bounded).
 */
async function terminateDuringRequest(
  env: Record<string, string>,
  slowMs: number,
): Promise<{
  app: RunningCommand;
  before: Readiness;
  during: Readiness;
  /** A request sent after readiness failed, while the server still accepts (the delay). */
  afterSignal: Promise<Response>;
  slow: Promise<Response>;
}> {
  const port = await freePort('127.0.0.1');
  const app = startSample([], { env: { ...env, PORT: String(port) }, timeoutMs: GRACE_MS });
  await app.waitForOutput('Listening on port');
  const before = await readiness(port);
  const slow = fetch(`http://127.0.0.1:${port}/slow?ms=${slowMs}`);
  // The server accepts for SHUTDOWN_DELAY_MS after the signal, so the request is in whatever
  // the scheduling; this pause only makes it likely that it is already running.
  await delay(200);
  app.child.kill('SIGTERM');
  let during = await readiness(port);
  for (let i = 0; i < 40 && during.http === 200; i++) {
    await delay(50);
    during = await readiness(port);
  }
  const afterSignal = fetch(`http://127.0.0.1:${port}/slow?ms=1`);
  return { app, before, during, afterSignal, slow };
}

describe('graceful shutdown of the sample', () => {
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'k8s-shutdown-'));
    env = {
      DATABASE_URL: join(dir, 'sample.sqlite'),
      CACHE_HOST: '',
      // Long enough to observe readiness failing while the server still accepts.
      SHUTDOWN_DELAY_MS: '1500',
    };
    const migrated = await runSample(['migrate'], { env });
    expect(migrated.code).toBe(0);
  });

  afterAll(async () => {
    await stopAllMemcached();
    rmSync(dir, { recursive: true, force: true });
  });

  it('on SIGTERM: readiness 503 shutting_down while still serving, the request in flight completes, exit 0', async () => {
    const { app, before, during, afterSignal, slow } = await terminateDuringRequest(env, 2500);
    expect(before.http).toBe(200);
    expect(before.status).toBe('ok');

    expect(during.http).toBe(503);
    expect(during.status).toBe('shutting_down');
    expect(during.details.shutdown).toMatchObject({ status: 'down', signal: 'SIGTERM' });
    // Sent once readiness failed, inside SHUTDOWN_DELAY_MS: Kubernetes may still route it here.
    const served = await afterSignal;
    expect(served.status).toBe(200);
    expect(await served.json()).toEqual({ sleptMs: 1 });

    const response = await slow;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ sleptMs: 2500 });

    const ended = await app.result;
    expect(ended.timedOut).toBe(false);
    expect(ended.signal).toBeNull();
    expect(ended.code).toBe(0);
    expect(ended.stdout).toContain('SIGTERM: shutting down');
    expect(ended.stderr).toBe('');
  });

  it('cuts a request that outlives SHUTDOWN_DRAIN_TIMEOUT_MS, then still closes and exits 0', async () => {
    const { app, slow, afterSignal } = await terminateDuringRequest(
      { ...env, SHUTDOWN_DELAY_MS: '200', SHUTDOWN_DRAIN_TIMEOUT_MS: '300' },
      10_000,
    );
    await expect(slow).rejects.toThrow();
    // Served or refused, depending on when it arrived: only the process' end matters here.
    await afterSignal.catch(() => undefined);
    const ended = await app.result;
    expect(ended.timedOut).toBe(false);
    expect(ended.code).toBe(0);
    expect(ended.stdout).toContain('closing their connections');
  });

  describe.runIf(memcachedAvailable())('with the cache on memcached', () => {
    let server: MemcachedProcess;
    beforeAll(async () => {
      server = await startMemcached({ host: '127.0.11.10' });
    });

    it('closes the pool too and exits 0 while a request is in flight', async () => {
      const { app, before, during, afterSignal, slow } = await terminateDuringRequest(
        { ...env, CACHE_HOST: server.id },
        2000,
      );
      await afterSignal.catch(() => undefined);
      expect(before.http).toBe(200);
      expect(before.details.cache).toMatchObject({
        status: 'up',
        backend: 'memcached',
        answering: [server.id],
      });
      expect(during.status).toBe('shutting_down');

      const response = await slow;
      expect(response.status).toBe(200);
      const ended = await app.result;
      expect(ended.timedOut).toBe(false);
      expect(ended.code).toBe(0);
      expect(ended.stderr).toBe('');
    });
  });
});
