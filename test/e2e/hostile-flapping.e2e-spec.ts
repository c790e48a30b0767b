import Keyv from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FixedMembers } from '../../lib/discovery/fixed-members.js';
import { MemcachedStore } from '../../lib/memcached/store/memcached.store.js';
import { HostileMember } from '../support/hostile-member.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { memcachedAvailable, startMemcached, stopAllMemcached } from '../support/memcached.js';

// This file's loopback range: 127.0.63.x. Issue 12: a member that answers `stats` but garbles
// gets, on and off for a minute, must not flush the fleet's cache again and again.
const run = memcachedAvailable();
const FLAP_MS = 60_000;
/** Bad for this long, then good for as long, and again. */
const PHASE_MS = 2_000;
const KEYS = Array.from({ length: 300 }, (_, i) => `key-${i}`);
const valueOf = (key: string): string => `value of ${key}`;

describe.runIf(run)('a member flapping for a minute', () => {
  let real: MemcachedProcess;
  let flapper: HostileMember;

  beforeAll(async () => {
    real = await startMemcached({ host: '127.0.63.1' });
    flapper = await HostileMember.start('127.0.63.2');
  });

  afterAll(async () => {
    await flapper?.stop();
    await stopAllMemcached();
  });

  it(
    'starts at most one new generation; the healthy member keeps ≥ 95 % hits; no wrong value',
    async () => {
      const started = Date.now();
      const bad = (): boolean => Math.floor((Date.now() - started) / PHASE_MS) % 2 === 0;
      // Garbles gets in its bad phases; stats, sets and deletes always answer as memcached does.
      flapper.script = (command, reply) =>
        command.verb === 'get' && bad() ? 'constructor\r\n' : reply;
      const lines: string[] = [];
      const logger = {
        log: (m: string) => void lines.push(m),
        warn: (m: string) => void lines.push(m),
        error: (m: string) => void lines.push(m),
      };
      const store = new MemcachedStore({
        source: new FixedMembers([{ host: real.host, port: real.port }, flapper.member]),
        logger,
        failureLimit: 2,
        retryTimeout: 500,
        commandTimeout: 500,
        connectTimeout: 500,
      });
      let ejections = 0;
      store.on('eject', () => ejections++);
      const uncaught: unknown[] = [];
      const onUncaught = (error: unknown): void => void uncaught.push(error);
      process.on('uncaughtException', onUncaught);
      try {
        await store.ready();
        const keyv = new Keyv({ store, namespace: 'flap' });
        const realId = `${real.host}:${real.port}`;
        const realStats = () => store.stats().members.find((m) => m.member === realId)!;
        const before = realStats();
        let rejected = 0;
        let wrong = 0;
        let reads = 0;
        // A read-through cache: get, and set on a miss. Bounded in time and count.
        for (let round = 0; round < 100_000 && Date.now() - started < FLAP_MS; round++) {
          const batch = KEYS.slice((round * 20) % KEYS.length, ((round * 20) % KEYS.length) + 20);
          await Promise.all(
            batch.map(async (key) => {
              try {
                const value = await keyv.get(key);
                reads++;
                if (value === undefined) await keyv.set(key, valueOf(key));
                else if (value !== valueOf(key)) wrong++;
              } catch {
                rejected++;
              }
            }),
          );
        }
        const after = realStats();
        const hits = after.hits - before.hits;
        const misses = after.misses - before.misses;
        const generations = lines.filter((l) => l.includes('starting a new generation')).length;
        console.log(
          `flapping ${FLAP_MS / 1000} s: ${reads} reads, ${ejections} ejections, ` +
            `${generations} new generation(s), healthy member hit ratio ` +
            `${((100 * hits) / (hits + misses)).toFixed(1)} % (${hits} hits, ${misses} misses), ` +
            `${wrong} wrong, ${rejected} rejected, ${lines.length} log lines`,
        );
        expect(uncaught).toEqual([]);
        expect(rejected).toBe(0);
        expect(wrong).toBe(0);
        // It did flap: ejected, back, ejected again.
        expect(ejections).toBeGreaterThanOrEqual(2);
        expect(generations).toBeLessThanOrEqual(1);
        expect(hits / (hits + misses)).toBeGreaterThanOrEqual(0.95);
        // Throttled: a few lines per 5 s at most, not one per failed command.
        expect(lines.length).toBeLessThanOrEqual(60);
      } finally {
        process.off('uncaughtException', onUncaught);
        await store.disconnect();
      }
    },
    FLAP_MS + 60_000,
  );
});
