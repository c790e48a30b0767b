import * as api from '@opentelemetry/api';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import Keyv from 'keyv';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FixedMembers, MemcachedStore } from 'nestjs-k8s';
import {
  freePort,
  memcachedAvailable,
  startMemcached,
  stopAllMemcached,
} from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { pointsOf, startOtelSdk } from '../support/otel-sdk.js';
import type { TestOtelSdk } from '../support/otel-sdk.js';
import { quietLogger } from '../support/quiet-logger.js';
import { waitFor } from '../support/wait-for.js';

// This file's loopback range: 127.0.49.x.
const REASON = 'nestjs_k8s.cache.reason';

/** The cache's spans under `parent` (the generation's broadcasts left out). */
function commandSpans(spans: ReadableSpan[], parent: api.Span): ReadableSpan[] {
  return spans.filter(
    (s) =>
      s.instrumentationScope.name === 'nestjs-k8s' &&
      s.parentSpanContext?.spanId === parent.spanContext().spanId &&
      s.attributes[REASON] !== 'broadcast',
  );
}

describe.runIf(memcachedAvailable())(
  'cache telemetry through a real store and the real SDK',
  () => {
    let servers: MemcachedProcess[];
    let sdk: TestOtelSdk;

    beforeAll(async () => {
      servers = await Promise.all([1, 2].map((i) => startMemcached({ host: `127.0.49.${i}` })));
    });
    afterAll(() => stopAllMemcached());
    beforeEach(() => {
      sdk = startOtelSdk();
    });
    afterEach(() => sdk.shutdown());

    const newStore = (telemetry?: false) =>
      new MemcachedStore({
        source: new FixedMembers(servers.map((s) => ({ host: s.host, port: s.port }))),
        logger: quietLogger,
        ...(telemetry === false && { telemetry }),
      });

    it("reports the store's members, hits and misses per member as the SDK collects them", async () => {
      const store = newStore();
      const keyv = new Keyv({ store, namespace: `otel-${Date.now()}` });
      try {
        const keys = Array.from({ length: 20 }, (_, i) => `key:${i}`);
        for (const key of keys) await keyv.set(key, 'v');
        for (const key of keys) expect(await keyv.get(key)).toBe('v');
        expect(await keyv.get('absent')).toBeUndefined();
        await keyv.get(['key:1', 'key:2', 'absent:2']);

        const collected = await sdk.metrics();
        const stats = store.stats();
        expect(
          pointsOf(collected, 'nestjs_k8s.cache.members').map((p) => [p.attributes.state, p.value]),
        ).toEqual([
          ['ring', 2],
          ['ejected', 0],
        ]);
        for (const counter of ['hits', 'misses'] as const) {
          const points = pointsOf(collected, `nestjs_k8s.cache.${counter}`);
          const byMember = Object.fromEntries(
            points.map((p) => [
              `${String(p.attributes['server.address'])}:${String(p.attributes['server.port'])}`,
              p.value,
            ]),
          );
          expect(byMember).toEqual(
            Object.fromEntries(stats.members.map((m) => [m.member, m[counter]])),
          );
        }
        // Both members were asked, and the reads found what was set.
        expect(stats.members.every((m) => m.hits > 0)).toBe(true);
        expect(stats.totals.hits).toBeGreaterThanOrEqual(22);
      } finally {
        await store.disconnect();
      }
    });

    it('telemetry: false reports nothing', async () => {
      const [on, off] = servers.map(
        (server, i) =>
          new MemcachedStore({
            source: new FixedMembers([{ host: server.host, port: server.port }]),
            logger: quietLogger,
            ...(i === 1 && { telemetry: false }),
          }),
      );
      try {
        await Promise.all([on.ready(), off.ready()]);
        await Promise.all([on.set('k', 'v'), off.set('k', 'v')]);
        await Promise.all([on.get('k'), off.get('k')]);
        expect(off.stats().totals.hits).toBe(1);
        const hits = pointsOf(await sdk.metrics(), 'nestjs_k8s.cache.hits');
        expect(hits.map((p) => [p.attributes['server.address'], p.value])).toEqual([
          [servers[0].host, 1],
        ]);
      } finally {
        await Promise.all([on.disconnect(), off.disconnect()]);
      }
    });

    /** Run `fn` under a span of the test's own, as a request handler would. */
    async function underParent(fn: () => Promise<unknown>): Promise<api.Span> {
      const parent = sdk.tracer.startSpan('request');
      await api.context.with(api.trace.setSpan(api.context.active(), parent), fn);
      parent.end();
      return parent;
    }

    it('makes a CLIENT span for each get, set, delete and per-member multi-get through Keyv', async () => {
      const store = newStore();
      const keyv = new Keyv({ store, namespace: 'spans' });
      const keys = Array.from({ length: 12 }, (_, i) => `key:${i}`);
      try {
        await keyv.set('warm', 'up'); // loads the generation outside the span under test
        const parent = await underParent(async () => {
          await keyv.set('key:0', 'zero');
          expect(await keyv.get('key:0')).toBe('zero');
          await keyv.get(keys);
          await keyv.delete('key:0');
        });
        const spans = commandSpans(sdk.spans(), parent);
        const operations = spans.map((s) => s.attributes['db.operation.name']);
        expect(operations.filter((o) => o !== 'get_multi')).toEqual(['set', 'get', 'delete']);
        const ids = servers.map((s) => s.id);
        for (const span of spans) {
          expect(span.kind).toBe(SpanKind.CLIENT);
          expect(span.attributes['db.system.name']).toBe('memcached');
          const member = `${String(span.attributes['server.address'])}:${String(span.attributes['server.port'])}`;
          expect(ids).toContain(member);
          expect(span.name).toBe(`${String(span.attributes['db.operation.name'])} ${member}`);
          expect(span.status.code).toBe(SpanStatusCode.UNSET);
          expect(JSON.stringify(span.attributes)).not.toContain('key:');
        }
        // One multi-get per member holding some of the 12 keys; together they asked for all 12.
        const multi = spans.filter((s) => s.attributes['db.operation.name'] === 'get_multi');
        expect(multi.length).toBeGreaterThanOrEqual(1);
        const sizes = multi.map((s) => Number(s.attributes['db.operation.batch.size'] ?? 1));
        expect(sizes.reduce((a, b) => a + b, 0)).toBe(12);
        const found = multi.reduce(
          (n, s) => n + Number(s.attributes['db.response.returned_rows']),
          0,
        );
        expect(found).toBe(1);
      } finally {
        await store.disconnect();
      }
    });

    it('marks commands to a member that refuses connections as failed, and shows the replica reads', async () => {
      const dead = { host: '127.0.49.3', port: await freePort('127.0.49.3') };
      const live = { host: servers[0].host, port: servers[0].port };
      const store = new MemcachedStore({
        source: new FixedMembers([dead, live]),
        logger: quietLogger,
        replicas: 2,
        failureLimit: 1_000, // the dead member stays on the ring: reads of its keys ask it first
      });
      const keyv = new Keyv({ store, namespace: 'failures' });
      const keys = Array.from({ length: 8 }, (_, i) => `key:${i}`);
      try {
        for (const key of keys) await keyv.set(key, 'v');
        const parent = await underParent(async () => {
          for (const key of keys) expect(await keyv.get(key)).toBe('v');
        });
        const spans = commandSpans(sdk.spans(), parent);
        const failed = spans.filter((s) => s.status.code === SpanStatusCode.ERROR);
        // The keys the dead member owns: its get failed, the live replica answered.
        expect(failed.length).toBeGreaterThan(0);
        for (const span of failed) {
          expect(span.attributes['server.address']).toBe(dead.host);
          expect(typeof span.attributes['error.type']).toBe('string');
        }
        const replicaReads = spans.filter((s) => s.attributes[REASON] === 'replica');
        expect(replicaReads).toHaveLength(failed.length);
        for (const span of replicaReads) {
          expect(span.attributes).toMatchObject({
            'db.operation.name': 'get',
            'server.address': live.host,
            'db.response.returned_rows': 1,
          });
        }
      } finally {
        await store.disconnect();
      }
    });

    it('shows warm-up reads from the previous owner and the copies to the new one', async () => {
      const [a, b] = servers.map((s) => ({ host: s.host, port: s.port }));
      const source = new FixedMembers([a]);
      const store = new MemcachedStore({ source, logger: quietLogger, warmupPeriod: 60_000 });
      const keyv = new Keyv({ store, namespace: `warmup-${Date.now()}` });
      const keys = Array.from({ length: 20 }, (_, i) => `key:${i}`);
      try {
        for (const key of keys) await keyv.set(key, 'v');
        source.set([a, b]);
        const parent = await underParent(async () => {
          for (const key of keys) expect(await keyv.get(key)).toBe('v');
        });
        const spans = commandSpans(sdk.spans(), parent);
        const warmup = spans.filter((s) => s.attributes[REASON] === 'warmup');
        // Keys that moved to b missed there and were read from a, then copied to b with add.
        expect(warmup.length).toBeGreaterThan(0);
        expect(warmup.every((s) => s.attributes['server.address'] === a.host)).toBe(true);
        // Copies run in the background after each read: wait (bounded) for their spans to end.
        const copies = () =>
          sdk
            .spans()
            .filter(
              (s) => s.attributes[REASON] === 'copy' && s.attributes['db.operation.name'] === 'add',
            );
        await waitFor('the copies’ spans', () => copies().length >= warmup.length, 2_000);
        expect(copies()).toHaveLength(warmup.length);
        expect(copies().every((s) => s.attributes['server.address'] === b.host)).toBe(true);
      } finally {
        await store.disconnect();
      }
    });
  },
);
