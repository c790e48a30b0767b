import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  memcachedAvailable,
  startMemcached,
  stopAllMemcached,
} from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { startSample } from '../support/run-command.js';

// This file's loopback range: 127.0.47.x.

interface ExportedSpan {
  name: string;
  kind: number;
  scope: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Record<string, unknown>;
  status: { code: number };
}

const SPAN_KIND_SERVER = 1;
const SPAN_KIND_CLIENT = 2;

describe.runIf(memcachedAvailable())('the sample traced by an app-level OpenTelemetry SDK', () => {
  let dir: string;
  let server: MemcachedProcess;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'k8s-otel-sample-'));
    server = await startMemcached({ host: '127.0.47.1' });
  });

  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await stopAllMemcached();
  });

  it("makes a request's cache commands CLIENT spans, children of its HTTP server span", async () => {
    const spansFile = join(dir, 'spans.jsonl');
    const port = await freePort('127.0.0.1');
    const app = startSample([], {
      nodeArgs: ['--import', './test/fixtures/otel-tracing.mjs'],
      env: {
        DATABASE_URL: join(dir, 'sample.sqlite'),
        CACHE_HOST: server.id,
        CACHE_REFRESH_INTERVAL: '0',
        PORT: String(port),
        OTEL_SPANS_FILE: spansFile,
      },
    });
    try {
      await app.waitForOutput('Listening on port');
      const response = await fetch(`http://127.0.0.1:${port}/square/12`);
      expect(await response.json()).toMatchObject({ n: 12, square: 144 });
    } finally {
      app.child.kill('SIGTERM');
    }
    const ended = await app.result;
    expect(ended.timedOut).toBe(false);

    const spans = readFileSync(spansFile, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as ExportedSpan);
    const request = spans.find(
      (s) => s.kind === SPAN_KIND_SERVER && s.attributes['url.path'] === '/square/12',
    );
    expect(request, JSON.stringify(spans.map((s) => s.name))).toBeDefined();
    const cache = spans.filter((s) => s.scope === 'nestjs-k8s');
    const children = cache.filter((s) => s.parentSpanId === request!.spanId);
    // The first request also loads the namespace generation from every member (`broadcast`).
    expect(
      children
        .filter((s) => s.attributes['nestjs_k8s.cache.reason'] !== undefined)
        .map((s) => s.attributes['nestjs_k8s.cache.reason']),
    ).toEqual(expect.arrayContaining(['broadcast']));
    const owner = children.filter((s) => s.attributes['nestjs_k8s.cache.reason'] === undefined);
    // CacheService.wrap on a meta member: the lease a miss wins (`mg … N`), then the fill of the
    // computed value with the lease's CAS (`ms … C`).
    expect(owner.map((s) => s.attributes['db.operation.name'])).toEqual(['lease', 'fill']);
    for (const span of owner) {
      expect(span.kind).toBe(SPAN_KIND_CLIENT);
      expect(span.traceId).toBe(request!.traceId);
      expect(span.name).toBe(`${String(span.attributes['db.operation.name'])} ${server.id}`);
      expect(span.attributes).toMatchObject({
        'db.system.name': 'memcached',
        'server.address': server.host,
        'server.port': server.port,
      });
      // No key or value by default.
      expect(JSON.stringify(span.attributes)).not.toContain('square');
    }
    expect(owner[0].attributes['db.response.returned_rows']).toBe(0);
  });
});
