import * as api from '@opentelemetry/api';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startOtelSdk } from '../../test/support/otel-sdk.js';
import type { TestOtelSdk } from '../../test/support/otel-sdk.js';
import { traceCommandAttempt } from './trace-attempt.js';

// Every test gets an SDK of its own, registered globally, and shut down after it.
let sdk: TestOtelSdk;
beforeEach(() => {
  sdk = startOtelSdk();
});
afterEach(() => sdk.shutdown());

describe('traceCommandAttempt with the real SDK', () => {
  it('runs the attempt in its own span: attributes, outcome, children', async () => {
    const result = await traceCommandAttempt(
      'checkmigrations attempt',
      { 'nestjs_k8s.attempt': 2 },
      async (span) => {
        // What the attempt does (a database client's span) becomes a child.
        sdk.tracer.startSpan('SELECT').end();
        span.setAttributes({ 'nestjs_k8s.migrations.pending': 3 });
        return 'pending';
      },
    );
    expect(result).toBe('pending');
    const [child, attempt] = sdk.spans();
    expect(attempt.name).toBe('checkmigrations attempt');
    expect(attempt.kind).toBe(SpanKind.INTERNAL);
    expect(attempt.attributes).toEqual({
      'nestjs_k8s.attempt': 2,
      'nestjs_k8s.migrations.pending': 3,
    });
    expect(attempt.status.code).toBe(SpanStatusCode.UNSET);
    expect(child.parentSpanContext?.spanId).toBe(attempt.spanContext().spanId);
  });

  it('marks a failed attempt and rethrows the same error', async () => {
    class DatabaseUnreachable extends Error {
      override name = 'DatabaseUnreachable';
    }
    const error = new DatabaseUnreachable('connect ECONNREFUSED 127.0.0.1:5432');
    await expect(traceCommandAttempt('migrate', {}, () => Promise.reject(error))).rejects.toBe(
      error,
    );
    const [span] = sdk.spans();
    expect(span.name).toBe('migrate');
    expect(span.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: 'connect ECONNREFUSED 127.0.0.1:5432',
    });
    expect(span.attributes['error.type']).toBe('DatabaseUnreachable');
    expect(span.ended).toBe(true);
  });

  it('is a child of the span active where it is called', async () => {
    const parent = sdk.tracer.startSpan('job');
    await api.context.with(api.trace.setSpan(api.context.active(), parent), () =>
      traceCommandAttempt('migrate', {}, () => Promise.resolve()),
    );
    parent.end();
    const migrate = sdk.spans().find((s) => s.name === 'migrate')!;
    expect(migrate.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
  });
});

describe('traceCommandAttempt without @opentelemetry/api', () => {
  it('just runs the attempt, with a span that takes attributes and keeps nothing', async () => {
    let ran = false;
    const result = await traceCommandAttempt(
      'migrate',
      {},
      async (span) => {
        span.setAttributes({ pending: 1 });
        span.fail('failed', 'nothing recorded');
        ran = true;
        return 7;
      },
      undefined,
    );
    expect([ran, result]).toEqual([true, 7]);
  });
});
