import * as api from '@opentelemetry/api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { histogramPoints, pointsOf, startOtelSdk } from '../../test/support/otel-sdk.js';
import type { TestOtelSdk } from '../../test/support/otel-sdk.js';
import { K8sOptionsError } from '../errors/k8s.error.js';
import type { MemberStats, PoolStats } from '../memcached/pool/memcached-pool.js';
import { createCacheTelemetry } from './cache-telemetry.js';
import { OtelApiMissingError, loadOtelApi } from './otel-api-loader.js';
import { resolveTelemetryOptions } from './telemetry-options.js';

/** A `require` in an app that lacks the API. */
const missing = (name: string): never => {
  throw Object.assign(new Error(`Cannot find module '${name}'`), { code: 'MODULE_NOT_FOUND' });
};
const present = (name: string): unknown => {
  if (name !== '@opentelemetry/api') throw new Error(`unexpected module ${name}`);
  return api;
};

describe('resolveTelemetryOptions', () => {
  it('is on by default, off with false, and takes an object', () => {
    expect(resolveTelemetryOptions(undefined)).toEqual({
      traces: true,
      metrics: true,
      recordKeys: false,
      explicit: false,
    });
    expect(resolveTelemetryOptions(false)).toBe(false);
    expect(resolveTelemetryOptions(true)).toMatchObject({ explicit: true, recordKeys: false });
    expect(resolveTelemetryOptions({ recordKeys: true, metrics: false })).toEqual({
      traces: true,
      metrics: false,
      recordKeys: true,
      explicit: true,
    });
    expect(resolveTelemetryOptions({ traces: false, metrics: false })).toBe(false);
  });

  it.each([
    ['yes', /cache\.telemetry must be true, false or an object/],
    [null, /cache\.telemetry must be true, false or an object/],
    [[true], /cache\.telemetry must be true, false or an object/],
    [
      { recordKey: true },
      /cache\.telemetry\.recordKey is not an option; the options are traces, metrics, recordKeys/,
    ],
    [{ recordKeys: 'yes' }, /cache\.telemetry\.recordKeys must be true or false, got "yes"/],
  ])('refuses %j with a clear error', (value, message) => {
    expect(() => resolveTelemetryOptions(value)).toThrow(K8sOptionsError);
    expect(() => resolveTelemetryOptions(value)).toThrow(message);
  });
});

describe('loading @opentelemetry/api', () => {
  it('is undefined when the API is not installed, and a broken install is not hidden', () => {
    expect(loadOtelApi(missing)).toBeUndefined();
    const broken = () => {
      throw Object.assign(new Error("Cannot find module './trace/span'"), {
        code: 'MODULE_NOT_FOUND',
      });
    };
    expect(() => loadOtelApi(broken)).toThrow("Cannot find module './trace/span'");
  });

  it('telemetry is off without the API by default, and an explicit request fails clearly', () => {
    expect(createCacheTelemetry(undefined, missing)).toBeUndefined();
    expect(createCacheTelemetry(false, present)).toBeUndefined();
    const explicit = () => createCacheTelemetry({ recordKeys: true }, missing);
    expect(explicit).toThrow(OtelApiMissingError);
    expect(explicit).toThrow(/npm install @opentelemetry\/api.*or set cache\.telemetry to false/);
  });
});

function memberStats(member: string, counts: Partial<MemberStats>): MemberStats {
  return {
    member,
    ops: 0,
    hits: 0,
    misses: 0,
    errors: 0,
    failures: 0,
    ejectedUntil: undefined,
    ejections: 0,
    readmissions: 0,
    warmupCopies: 0,
    replicaReads: 0,
    protocolErrors: 0,
    keyMismatches: 0,
    oversizedValues: 0,
    ...counts,
  };
}

describe('createCacheTelemetry with the real SDK', () => {
  let sdk: TestOtelSdk;
  beforeEach(() => {
    sdk = startOtelSdk();
  });
  afterEach(() => sdk.shutdown());

  it('gives an observer on the global tracer and meter', async () => {
    const telemetry = createCacheTelemetry(undefined, present)!;
    telemetry.observer.start('get', { host: '10.0.0.1', port: 11211 }, 1, 'owner')({ hits: 1 });
    expect(sdk.spans().map((s) => s.name)).toEqual(['get 10.0.0.1:11211']);
    expect(sdk.spans()[0].instrumentationScope.name).toBe('nestjs-k8s');
    const points = histogramPoints(await sdk.metrics(), 'db.client.operation.duration');
    expect(points.map((p) => p.value.count)).toEqual([1]);
  });

  it("reads the store's members and counters when metrics are collected, until stopped", async () => {
    let stats: PoolStats = {
      members: [
        memberStats('10.0.0.1:11211', { hits: 5, misses: 2 }),
        memberStats('[fd00::2]:11211', { hits: 1, errors: 3, ejections: 1 }),
      ],
      ring: ['10.0.0.1:11211'],
      totals: { ops: 0, hits: 6, misses: 2, errors: 3, ejections: 1, readmissions: 0 },
      trackedKeys: 0,
      invalidations: 0,
    };
    const telemetry = createCacheTelemetry(undefined, present)!;
    const stop = telemetry.observe({ stats: () => stats });

    const collected = await sdk.metrics();
    const members = pointsOf(collected, 'nestjs_k8s.cache.members');
    expect(members.map((p) => [p.attributes.state, p.value])).toEqual([
      ['ring', 1],
      ['ejected', 1],
    ]);
    const hits = pointsOf(collected, 'nestjs_k8s.cache.hits');
    expect(
      hits.map((p) => [p.attributes['server.address'], p.attributes['server.port'], p.value]),
    ).toEqual([
      ['10.0.0.1', 11211, 5],
      ['fd00::2', 11211, 1],
    ]);
    expect(pointsOf(collected, 'nestjs_k8s.cache.misses').map((p) => p.value)).toEqual([2, 0]);
    expect(pointsOf(collected, 'nestjs_k8s.cache.errors').map((p) => p.value)).toEqual([0, 3]);
    expect(pointsOf(collected, 'nestjs_k8s.cache.ejections').map((p) => p.value)).toEqual([0, 1]);

    stats = {
      ...stats,
      members: [memberStats('10.0.0.1:11211', { hits: 9 })],
      ring: ['10.0.0.1:11211'],
    };
    const hitsOf = async (address: string) =>
      pointsOf(await sdk.metrics(), 'nestjs_k8s.cache.hits').find(
        (p) => p.attributes['server.address'] === address,
      )?.value;
    expect(await hitsOf('10.0.0.1')).toBe(9);

    stop();
    stats = { ...stats, members: [memberStats('10.0.0.1:11211', { hits: 20 })] };
    // Stopped: the callback no longer runs, so the value read before (9) stays.
    expect(await hitsOf('10.0.0.1')).toBe(9);
  });

  it('metrics: false observes nothing and records no duration', async () => {
    const telemetry = createCacheTelemetry({ metrics: false }, present)!;
    telemetry.observe({
      stats: () => {
        throw new Error('stats() must not be read');
      },
    });
    telemetry.observer.start('set', { host: '10.0.0.1', port: 11211 }, 1, 'owner')({});
    const collected = await sdk.metrics();
    expect(collected.map((m) => m.descriptor.name)).toEqual([]);
    expect(sdk.spans()).toHaveLength(1);
  });
});
