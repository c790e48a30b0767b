import * as api from '@opentelemetry/api';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { histogramPoints, startOtelSdk } from '../../test/support/otel-sdk.js';
import type { TestOtelSdk } from '../../test/support/otel-sdk.js';
import { CommandTelemetry } from './command-telemetry.js';

const member = { host: '127.0.0.1', port: 11211 };
const v6 = { host: 'fd00::5', port: 11311 };

describe('CommandTelemetry with the real SDK', () => {
  let sdk: TestOtelSdk;
  beforeEach(() => {
    sdk = startOtelSdk();
  });
  afterEach(() => sdk.shutdown());

  const telemetry = (options: { traces?: boolean; metrics?: boolean; recordKeys?: boolean } = {}) =>
    CommandTelemetry.fromGlobal(api, {
      traces: options.traces ?? true,
      metrics: options.metrics ?? true,
      recordKeys: options.recordKeys ?? false,
    });

  it('makes one CLIENT span per command, a child of the caller span, with the database conventions', () => {
    const observer = telemetry();
    const parent = sdk.tracer.startSpan('GET /square/7');
    const end = api.context.with(api.trace.setSpan(api.context.active(), parent), () =>
      observer.start('get', member, 1, 'owner', 'keyv:gen:square:7'),
    );
    end({ hits: 1 });
    parent.end();

    const [span] = sdk.spans().filter((s) => s.name !== 'GET /square/7');
    expect(span.name).toBe('get 127.0.0.1:11211');
    expect(span.kind).toBe(SpanKind.CLIENT);
    expect(span.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(span.spanContext().traceId).toBe(parent.spanContext().traceId);
    expect(span.attributes).toEqual({
      'db.system.name': 'memcached',
      'db.operation.name': 'get',
      'server.address': '127.0.0.1',
      'server.port': 11211,
      'db.response.returned_rows': 1,
    });
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    expect(span.ended).toBe(true);
  });

  it('shows batches and fallback reads: batch size, the reason, and the keys found', () => {
    const observer = telemetry();
    observer.start('get_multi', v6, 3, 'warmup')({ hits: 2 });
    observer.start('get', member, 1, 'replica')({ hits: 0 });
    observer.start('add', member, 1, 'copy')({});

    const byName = new Map(sdk.spans().map((s) => [s.name, s]));
    expect([...byName.keys()].sort()).toEqual([
      'add 127.0.0.1:11211',
      'get 127.0.0.1:11211',
      'get_multi [fd00::5]:11311',
    ]);
    expect(byName.get('get_multi [fd00::5]:11311')!.attributes).toMatchObject({
      'db.operation.name': 'get_multi',
      'db.operation.batch.size': 3,
      'server.address': 'fd00::5',
      'server.port': 11311,
      'nestjs_k8s.cache.reason': 'warmup',
      'db.response.returned_rows': 2,
    });
    expect(byName.get('get 127.0.0.1:11211')!.attributes).toMatchObject({
      'nestjs_k8s.cache.reason': 'replica',
      'db.response.returned_rows': 0,
    });
    // A single-key command is no batch (the conventions: never a batch size of 1).
    expect(byName.get('get 127.0.0.1:11211')!.attributes).not.toHaveProperty(
      'db.operation.batch.size',
    );
    expect(byName.get('add 127.0.0.1:11211')!.attributes['nestjs_k8s.cache.reason']).toBe('copy');
  });

  it('marks a failed command: error status, error.type, duration recorded with it', async () => {
    const observer = telemetry();
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:11211'), {
      code: 'ECONNREFUSED',
    });
    observer.start('set', member, 1, 'owner')({ error: refused });
    observer.start('delete', member, 1, 'owner')({ error: new Error('Command timeout') });

    const [set, del] = sdk.spans();
    expect(set.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: 'connect ECONNREFUSED 127.0.0.1:11211',
    });
    expect(set.attributes['error.type']).toBe('ECONNREFUSED');
    expect(del.attributes['error.type']).toBe('timeout');
    const points = histogramPoints(await sdk.metrics(), 'db.client.operation.duration');
    expect(points.map((p) => p.attributes['error.type']).sort()).toEqual([
      'ECONNREFUSED',
      'timeout',
    ]);
  });

  it('records keys only when asked, and never values', () => {
    telemetry().start('get_multi', member, 2, 'owner', 'ns:g:a ns:g:b')({ hits: 0 });
    telemetry({ recordKeys: true }).start('get_multi', member, 2, 'owner', ['ns:g:a', 'ns:g:b'])({
      hits: 0,
    });
    telemetry({ recordKeys: true }).start('set', member, 1, 'owner', 'ns:g:a')({});

    const [without, withKeys, set] = sdk.spans();
    expect(Object.keys(without.attributes).some((k) => k.startsWith('db.query'))).toBe(false);
    expect(JSON.stringify(without.attributes)).not.toContain('ns:g:a');
    expect(withKeys.attributes['db.query.text']).toBe('get ns:g:a ns:g:b');
    expect(set.attributes['db.query.text']).toBe('set ns:g:a');
  });

  it('records db.client.operation.duration in seconds per operation and member', async () => {
    const observer = telemetry();
    for (let i = 0; i < 3; i++) observer.start('get', member, 1, 'owner')({ hits: 1 });
    observer.start('get_multi', member, 2, 'owner')({ hits: 2 });

    const collected = await sdk.metrics();
    const metric = collected.find((m) => m.descriptor.name === 'db.client.operation.duration')!;
    expect(metric.descriptor.unit).toBe('s');
    const points = histogramPoints(collected, 'db.client.operation.duration');
    const get = points.find((p) => p.attributes['db.operation.name'] === 'get')!;
    expect(get.attributes).toEqual({
      'db.system.name': 'memcached',
      'db.operation.name': 'get',
      'server.address': '127.0.0.1',
      'server.port': 11211,
    });
    expect(get.value.count).toBe(3);
    // No command was sent: a duration in seconds far below one (not milliseconds).
    expect(get.value.sum).toBeGreaterThanOrEqual(0);
    expect(get.value.max).toBeLessThan(1);
    expect(points.find((p) => p.attributes['db.operation.name'] === 'get_multi')!.value.count).toBe(
      1,
    );
  });

  it('traces: false makes no spans; metrics: false records no duration', async () => {
    telemetry({ traces: false }).start('get', member, 1, 'owner')({ hits: 1 });
    expect(sdk.spans()).toHaveLength(0);
    expect(histogramPoints(await sdk.metrics(), 'db.client.operation.duration')).toHaveLength(1);

    telemetry({ metrics: false }).start('set', member, 1, 'owner')({});
    expect(sdk.spans().map((s) => s.name)).toEqual(['set 127.0.0.1:11211']);
    const points = histogramPoints(await sdk.metrics(), 'db.client.operation.duration');
    expect(points.map((p) => p.attributes['db.operation.name'])).toEqual(['get']);
  });
});

describe('CommandTelemetry without an SDK (the API alone)', () => {
  it('hands back one shared no-op end and records nothing', () => {
    const observer = CommandTelemetry.fromGlobal(api, {
      traces: true,
      metrics: true,
      recordKeys: true,
    });
    const first = observer.start('get', member, 1, 'owner', 'k');
    const second = observer.start('get_multi', member, 2, 'warmup', 'k l');
    expect(first).toBe(second);
    expect(() => first({ error: new Error('boom') })).not.toThrow();
  });
});

describe('CommandTelemetry and an SDK registered later', () => {
  it('records once the SDK is there', async () => {
    const observer = CommandTelemetry.fromGlobal(api, {
      traces: true,
      metrics: false,
      recordKeys: false,
    });
    observer.start('get', member, 1, 'owner')({ hits: 0 }); // no SDK yet: nothing to record
    const sdk = startOtelSdk();
    try {
      observer.start('set', member, 1, 'owner')({});
      expect(sdk.spans().map((s) => s.name)).toEqual(['set 127.0.0.1:11211']);
    } finally {
      await sdk.shutdown();
    }
    // Unregistered again: back to no spans, without an error.
    expect(() => observer.start('delete', member, 1, 'owner')({})).not.toThrow();
  });
});
