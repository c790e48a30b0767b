import Keyv from 'keyv';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FixedMembers, MemcachedStore } from 'nestjs-k8s';
import { memcachedAvailable, startMemcached, stopAllMemcached } from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { pointsOf, startOtelSdk } from '../support/otel-sdk.js';
import type { TestOtelSdk } from '../support/otel-sdk.js';

// This file's loopback range: 127.0.49.x.
const silent = { log() {}, error() {}, warn() {}, debug() {}, verbose() {} };

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
        logger: silent,
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
            logger: silent,
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
  },
);
