import type { Socket } from 'node:net';
import Keyv from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FixedMembers } from '../../lib/discovery/fixed-members.js';
import { MemcachedStore } from '../../lib/memcached/store/memcached.store.js';
import type { HostileScript } from '../support/hostile-member.js';
import { HostileMember, honest } from '../support/hostile-member.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { memcachedAvailable, startMemcached, stopAllMemcached } from '../support/memcached.js';

// This file's loopback range: 127.0.62.x. Every crash reproduction of issue 12, one member
// hostile and one real memcached beside it as the control.
const run = memcachedAvailable();
const KEYS = Array.from({ length: 200 }, (_, i) => `key-${i}`);
const valueOf = (key: string): string => `value of ${key}`;
const MAX_VALUE_SIZE = 1_048_000;

/** `VALUE` header, then 8 KiB every 20 ms (1 MB in 2.6 s) until the client hangs up. */
function streamAfter(header: (key: string) => string): HostileScript {
  return (command, reply, socket) => {
    if (command.verb !== 'get') return reply;
    socket.write(header(command.keys[0]));
    const chunk = Buffer.alloc(8192, 'x');
    const timer = setInterval(() => {
      if (socket.destroyed) clearInterval(timer);
      else socket.write(chunk);
    }, 20);
    socket.once('close', () => clearInterval(timer));
    return undefined;
  };
}

function onGet(
  reply: (key: string, honest: Buffer, socket: Socket) => string | Buffer,
): HostileScript {
  return (command, honestReply, socket) =>
    command.verb === 'get' ? reply(command.keys[0], honestReply, socket) : honestReply;
}

const JUNK = Buffer.from('junk line that no memcached sends\r\n'.repeat(60_000));

describe.runIf(run)('a hostile member never crashes, floods or misleads the app', () => {
  let real: MemcachedProcess;
  let hostile: HostileMember;
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown): void => void uncaught.push(error);
  const table: string[] = [];

  const scenarios: Array<[string, HostileScript]> = [
    ['constructor\\r\\n', onGet(() => 'constructor\r\n')],
    ['VALUE k 0 -1', onGet((key) => `VALUE ${key} 0 -1\r\n`)],
    ['VALUE without length', onGet((key) => `VALUE ${key} 0\r\n`)],
    ['length 5,000,000,000', onGet((key) => `VALUE ${key} 0 5000000000\r\n`)],
    ['the same reply twice', onGet((_, reply) => Buffer.concat([reply, reply]))],
    ['an extra END', onGet((_, reply) => Buffer.concat([reply, Buffer.from('END\r\n')]))],
    [
      'an unsolicited STAT',
      onGet((_, reply) => Buffer.concat([reply, Buffer.from('STAT pid 1\r\n')])),
    ],
    ['HELLO2\\r\\n to every command', (c, reply) => (c.verb === 'stats' ? reply : 'HELLO2\r\n')],
    ['a junk flood', onGet(() => JUNK)],
    ['a 2 GB VALUE header, then streaming', streamAfter((key) => `VALUE ${key} 0 2000000000\r\n`)],
    [
      'a value at the bound, streamed slowly',
      streamAfter((key) => `VALUE ${key} 0 ${MAX_VALUE_SIZE}\r\n`),
    ],
    ['another key’s data', onGet((key, _, socket) => wrongKeysData(hostile, key, socket))],
    ['SERVER_ERROR to everything', () => 'SERVER_ERROR something broke\r\n'],
  ];

  beforeAll(async () => {
    real = await startMemcached({ host: '127.0.62.1' });
    hostile = await HostileMember.start('127.0.62.2');
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
  });

  afterAll(async () => {
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
    // The table of the closing note: scenario → outcome.
    console.log(
      '| scenario | rejected calls | wrong values | healthy hit ratio | protocol errors | key mismatches | ejected | log lines | heap+buffers growth |\n' +
        '|---|---|---|---|---|---|---|---|---|\n' +
        table.join('\n'),
    );
    await hostile?.stop();
    await stopAllMemcached();
  });

  it.each(scenarios)(
    'survives %s: no rejection, no wrong value, bounded memory and logs',
    async (name, script) => {
      hostile.script = honest;
      hostile.dropConnections();
      let logLines = 0;
      const counting = { log: () => logLines++, warn: () => logLines++, error: () => logLines++ };
      const store = new MemcachedStore({
        source: new FixedMembers([{ host: real.host, port: real.port }, hostile.member]),
        logger: counting,
        failureLimit: 2,
        retryTimeout: 60_000,
        commandTimeout: 500,
        connectTimeout: 500,
        maxValueSize: MAX_VALUE_SIZE,
      });
      try {
        hostile.items.clear();
        const keyv = new Keyv({ store, namespace: `h${scenarios.findIndex(([n]) => n === name)}` });
        for (const key of KEYS) expect(await keyv.set(key, valueOf(key))).toBe(true);
        const onHostile = new Set(
          KEYS.filter((key) => [...hostile.items.keys()].some((k) => k.endsWith(`:${key}`))),
        );
        const healthyKeys = KEYS.filter((key) => !onHostile.has(key));
        expect(onHostile.size).toBeGreaterThan(20);
        expect(healthyKeys.length).toBeGreaterThan(20);

        hostile.script = script;
        logLines = 0;
        const before = memory();
        let rejected = 0;
        let wrong = 0;
        let healthyReads = 0;
        let healthyHits = 0;
        const check = (key: string, value: unknown): void => {
          if (value !== undefined && value !== valueOf(key)) wrong++;
          if (!onHostile.has(key)) {
            healthyReads++;
            if (value === valueOf(key)) healthyHits++;
          }
        };
        for (let round = 0; round < 4; round++) {
          const singles = await Promise.all(
            KEYS.map((key) => keyv.get(key).catch(() => (rejected++, undefined))),
          );
          KEYS.forEach((key, i) => check(key, singles[i]));
          const many = await keyv
            .getMany(KEYS)
            .catch(() => (rejected++, KEYS.map(() => undefined)));
          KEYS.forEach((key, i) => check(key, many[i]));
          // Writes through the hostile member too: they return a boolean, never throw.
          await Promise.all(
            KEYS.slice(0, 20).map((key) => keyv.set(key, valueOf(key)).catch(() => rejected++)),
          );
        }
        const grown = memory() - before;
        const stats = store.stats().members.find((m) => m.member === hostile.id)!;
        const ejected = !store.stats().ring.includes(hostile.id);
        const ratio = healthyHits / healthyReads;
        table.push(
          `| ${name} | ${rejected} | ${wrong} | ${(100 * ratio).toFixed(1)} % | ${stats.protocolErrors} | ` +
            `${stats.keyMismatches} | ${ejected ? 'yes' : 'no'} | ${logLines} | ${(grown / 1e6).toFixed(1)} MB |`,
        );

        expect(uncaught).toEqual([]);
        expect(rejected).toBe(0);
        expect(wrong).toBe(0);
        expect(ratio).toBeGreaterThanOrEqual(0.95);
        // One line per member per 5 s, plus the ejection's: far below one per failed command.
        expect(logLines).toBeLessThanOrEqual(10);
        // The value bound (1 MB) per connection, a few times over: nothing near the announced sizes.
        expect(grown).toBeLessThan(64e6);
        if (name === 'another key’s data') expect(stats.keyMismatches).toBeGreaterThan(0);
        else if (name === 'SERVER_ERROR to everything') expect(ejected).toBe(true);
        else if (name === 'a value at the bound, streamed slowly') expect(ejected).toBe(true);
        else expect(stats.protocolErrors).toBeGreaterThan(0);
        // The control: the real member was never counted as failing.
        const control = store
          .stats()
          .members.find((m) => m.member === `${real.host}:${real.port}`)!;
        expect(control.errors).toBe(0);
      } finally {
        await store.disconnect();
        hostile.script = honest;
        hostile.dropConnections();
      }
    },
  );
});

/** A reply to a get of `key` with another stored item's flags and bytes under `key`'s name. */
function wrongKeysData(hostile: HostileMember, key: string, socket: Socket): Buffer {
  void socket;
  for (const [other, item] of hostile.items) {
    if (other === key || other.includes('~')) continue;
    return Buffer.concat([
      Buffer.from(`VALUE ${key} ${item.flags} ${item.data.length}\r\n`),
      item.data,
      Buffer.from('\r\nEND\r\n'),
    ]);
  }
  return Buffer.from('END\r\n');
}

/** Heap plus buffers, in bytes, after a collection when the runtime allows one. */
function memory(): number {
  (globalThis as { gc?: () => void }).gc?.();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}
