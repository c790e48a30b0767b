import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as api from '@opentelemetry/api';
import { SpanStatusCode } from '@opentelemetry/api';
import type { QueryRunner } from 'typeorm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startOtelSdk } from '../../test/support/otel-sdk.js';
import type { TestOtelSdk } from '../../test/support/otel-sdk.js';
import type { K8sCommandIo } from './command-options.js';
import { otelCommandTracer } from './command-tracer.js';
import type { CommandSpan, CommandTracer } from './command-tracer.js';
import { executeK8sCommand } from './execute-command.js';

class CreateThings1700000000000 {
  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('CREATE TABLE thing (id INTEGER PRIMARY KEY)');
  }
  async down(): Promise<void> {}
}

/** Records each span as the tracer saw it once its work settled, and the order of events. */
function recordingTracer(): { tracer: CommandTracer; spans: CommandSpan[]; events: string[] } {
  const spans: CommandSpan[] = [];
  const events: string[] = [];
  const tracer: CommandTracer = {
    async attempt(span, run) {
      events.push(`start ${span.command} ${span.attempt}`);
      try {
        return await run();
      } finally {
        events.push(`end ${span.command} ${span.attempt}`);
        spans.push({ ...span });
      }
    },
  };
  return { tracer, spans, events };
}

describe('CommandTracer (real SQLite file)', () => {
  let dir: string;
  const lines: string[] = [];
  const io: K8sCommandIo = {
    out: (line) => lines.push(`out: ${line}`),
    err: (line) => lines.push(`err: ${line}`),
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'k8s-tracer-'));
    lines.length = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const options = (tracer: CommandTracer) => ({
    tracer,
    dataSources: () => ({
      type: 'better-sqlite3' as const,
      database: join(dir, 'app.sqlite'),
      migrations: [CreateThings1700000000000],
    }),
  });

  it('sees a checkmigrations attempt with its outcome', async () => {
    const { tracer, spans } = recordingTracer();
    expect(await executeK8sCommand(['checkmigrations'], options(tracer), { io })).toBe(1);
    const name = `better-sqlite3 ${join(dir, 'app.sqlite')}`;
    expect(spans).toEqual([
      {
        command: 'checkmigrations',
        attempt: 1,
        dataSources: [name],
        outcome: 'not-ready',
        detail: `1 pending migration on ${name}: CreateThings1700000000000`,
      },
    ]);
  });

  it('sees each attempt of a --wait, numbered, one span at a time', async () => {
    const { tracer, spans, events } = recordingTracer();
    const argv = ['checkmigrations', '--wait', '--timeout', '1', '--interval', '0.2'];
    expect(await executeK8sCommand(argv, options(tracer), { io })).toBe(1);
    expect(spans.length).toBeGreaterThanOrEqual(1);
    spans.forEach((span, i) => {
      expect(span.attempt).toBe(i + 1);
      // The timeout may cut the last attempt short.
      expect(['not-ready', 'interrupted']).toContain(span.outcome);
    });
    expect(events).toEqual(
      spans.flatMap((s) => [`start ${s.command} ${s.attempt}`, `end ${s.command} ${s.attempt}`]),
    );
    expect(lines.at(-1)).toMatch(/^err: Timed out after 1 s, not ready: 1 pending migration/);
  });

  it('sees migrate per data source, then a ready check', async () => {
    const { tracer, spans } = recordingTracer();
    expect(await executeK8sCommand(['migrate'], options(tracer), { io })).toBe(0);
    expect(await executeK8sCommand(['checkmigrations'], options(tracer), { io })).toBe(0);
    const name = `better-sqlite3 ${join(dir, 'app.sqlite')}`;
    expect(spans).toEqual([
      { command: 'migrate', attempt: 1, dataSources: [name], outcome: 'ready' },
      { command: 'checkmigrations', attempt: 1, dataSources: [name], outcome: 'ready' },
    ]);
    expect(lines).toEqual([
      `out: Applied 1 migration on ${name}: CreateThings1700000000000.`,
      'out: Migrations complete.',
    ]);
  });

  it('sees a migrate that cannot connect as not ready, with the line it printed', async () => {
    const { tracer, spans } = recordingTracer();
    const code = await executeK8sCommand(
      ['migrate'],
      {
        tracer,
        dataSources: () => ({
          type: 'postgres' as const,
          host: '127.0.0.1',
          // Nothing listens on port 1 here: the connection is refused at once.
          port: 1,
          migrations: [CreateThings1700000000000],
        }),
      },
      { io },
    );
    expect(code).toBe(1);
    expect(spans).toEqual([
      {
        command: 'migrate',
        attempt: 1,
        dataSources: ['postgres 127.0.0.1:1/'],
        outcome: 'not-ready',
        detail: expect.stringMatching(/^Cannot migrate: database unreachable: .*ECONNREFUSED/),
      },
    ]);
    expect(lines).toEqual([`err: ${spans[0].detail}`]);
  });

  it('opens no span for a command refused from its options alone', async () => {
    const { tracer, spans } = recordingTracer();
    const missing = join(dir, 'not-mounted', 'app.sqlite');
    const code = await executeK8sCommand(
      ['migrate'],
      {
        tracer,
        dataSources: () => ({
          type: 'better-sqlite3' as const,
          database: missing,
          migrations: [CreateThings1700000000000],
        }),
      },
      { io },
    );
    expect(code).toBe(2);
    expect(spans).toEqual([]);
    expect(lines).toEqual([expect.stringMatching(/^err: Configuration error on better-sqlite3 /)]);
  });
});

describe('otelCommandTracer with the real SDK', () => {
  let sdk: TestOtelSdk;
  beforeEach(() => {
    sdk = startOtelSdk();
  });
  afterEach(() => sdk.shutdown());

  it('records each unit of work with its outcome; a failed one is an error', async () => {
    const tracer = otelCommandTracer(api);
    const first = { command: 'checkmigrations' as const, attempt: 1, dataSources: ['default'] };
    const ready = await tracer.attempt({ ...first }, async () => 'not yet');
    expect(ready).toBe('not yet');
    const work: CommandSpan = { command: 'migrate', attempt: 1, dataSources: ['default', 'audit'] };
    await tracer.attempt(work, async () => {
      work.outcome = 'failed';
      work.detail = 'migration AddUsers1700000000000 failed: relation "users" already exists';
    });

    const [check, migrate] = sdk.spans();
    expect(check.name).toBe('checkmigrations');
    expect(check.attributes).toEqual({
      'nestjs_k8s.command.attempt': 1,
      'nestjs_k8s.command.data_sources': ['default'],
      'nestjs_k8s.command.outcome': 'unknown',
    });
    expect(check.status.code).toBe(SpanStatusCode.UNSET);
    expect(migrate.name).toBe('migrate');
    expect(migrate.attributes).toMatchObject({
      'nestjs_k8s.command.data_sources': ['default', 'audit'],
      'nestjs_k8s.command.outcome': 'failed',
      'error.type': 'failed',
    });
    expect(migrate.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: 'migration AddUsers1700000000000 failed: relation "users" already exists',
    });
  });
});
