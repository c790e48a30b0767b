import fc from 'fast-check';
import Keyv from 'keyv';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MemcachedError } from '../../lib/errors/memcached.errors.js';
import { MemcachedValueTooLargeError } from '../../lib/errors/memcached.errors.js';
import { MemcachedStore } from '../../lib/memcached/store/memcached.store.js';
import type { MemcachedProcess } from '../support/memcached.js';
import {
  memcachedAvailable,
  rawGet,
  startMemcached,
  stopAllMemcached,
} from '../support/memcached.js';
import { quietLogger } from '../support/quiet-logger.js';

// This file's loopback range: 127.0.9.x.
const run = memcachedAvailable();
const SEED = 20_261_125;
const CANARY = 'fuzz-canary';
const MB = 1024 * 1024;

/** Fragments that would end a command line or start another one if a key reached the wire as is. */
const INJECTIONS = [
  '\r\n',
  '\n',
  '\r',
  '\0',
  ' ',
  '\t',
  'flush_all',
  '\r\nflush_all\r\n',
  '\r\nflush_all noreply\r\n',
  `\r\nset ${CANARY} 0 0 4\r\ndead\r\n`,
  `\r\ndelete ${CANARY}\r\n`,
  '\r\nshutdown\r\n',
  'END\r\n',
  'VALUE x 0 1\r\n',
  '~',
  '~~',
];

const injected = fc
  .tuple(fc.string({ maxLength: 20 }), fc.constantFrom(...INJECTIONS), fc.string({ maxLength: 20 }))
  .map((parts) => parts.join(''));

/** Keys of any bytes and any length up to 10 KB, weighted towards the ones that break protocols. */
const keyArb = fc.oneof(
  injected,
  fc.string({ unit: 'binary', maxLength: 300 }),
  // Any UTF-16 code units: lone surrogates included.
  fc
    .array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 64 })
    .map((codes) => String.fromCharCode(...codes)),
  // Raw bytes, read as latin1 (one char per byte) and as UTF-8 (invalid sequences become U+FFFD).
  fc.uint8Array({ maxLength: 10_240 }).map((b) => Buffer.from(b).toString('latin1')),
  fc.uint8Array({ maxLength: 10_240 }).map((b) => Buffer.from(b).toString('utf8')),
  // Around memcached's 250-byte limit, in ASCII and in multi-byte characters.
  fc.string({ unit: 'binary-ascii', minLength: 245, maxLength: 255 }),
  fc.string({ unit: 'grapheme', minLength: 80, maxLength: 130 }),
  fc.constantFrom('', ' ', '~', 'x'.repeat(10_240)),
);

/** Sizes around the item limits: under maxValueSize, over it, over memcached's 1 MB. */
const bigString = fc
  .constantFrom(1_000_000, 1_047_900, 1_048_001, MB, MB + 1)
  .map((n) => 'v'.repeat(n));

const stringValue = fc.oneof(
  { weight: 4, arbitrary: injected },
  { weight: 4, arbitrary: fc.string({ unit: 'binary', maxLength: 2_000 }) },
  { weight: 1, arbitrary: bigString },
);

/** What Keyv is given: strings (lone surrogates too), JSON values, big ones. */
const keyvValue = fc.oneof(
  { weight: 6, arbitrary: stringValue },
  {
    weight: 2,
    arbitrary: fc
      .array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 64 })
      .map((codes) => String.fromCharCode(...codes)),
  },
  { weight: 2, arbitrary: fc.json({ maxDepth: 3 }).map((text) => JSON.parse(text) as unknown) },
);

/** What the store is given directly (as Keyv's serializer would hand it): strings and bytes. */
const storeValue = fc.oneof(
  { weight: 6, arbitrary: stringValue },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 5_000 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: fc.constantFrom(Buffer.alloc(MB + 1, 0), Buffer.from('\r\nEND\r\n\0')) },
);

describe.runIf(run)('hostile input', () => {
  let members: MemcachedProcess[];
  const cleanups: Array<() => Promise<void> | void> = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);
  const figures = { inputs: 0, roundTripped: 0, refused: 0 };

  /** `staleOnDelete` on: multi-gets go as a quiet `mg` pipeline (meta), as well as gets. */
  function newStore(staleOnDelete = 0) {
    const store = new MemcachedStore({
      host: members.map((m) => m.id).join(','),
      refreshInterval: 0,
      staleOnDelete,
      logger: quietLogger,
    });
    cleanups.push(() => store.disconnect());
    const errors: MemcachedError[] = [];
    store.on('error', (error: MemcachedError) => errors.push(error));
    return { store, errors };
  }

  /** Every member healthy, on the connection it started with; no error but refused values. */
  async function expectUnharmed(
    store: MemcachedStore,
    errors: MemcachedError[],
    connectionsBefore: number[],
  ) {
    for (const member of members) expect(await rawGet(member, CANARY)).toBe('alive');
    const stats = await Promise.all(members.map((m) => m.stats()));
    expect(stats.map((s) => s.cmd_flush)).toEqual(['0', '0', '0']);
    // One new connection per member since: the `stats` call just made. The store never had to
    // reconnect, so no command ever broke its connection.
    expect(stats.map((s, i) => Number(s.total_connections) - connectionsBefore[i])).toEqual([
      2, 2, 2,
    ]);
    expect(errors.filter((e) => !(e instanceof MemcachedValueTooLargeError))).toEqual([]);
    expect(
      store.stats().members.every((m) => m.failures === 0 && m.ejectedUntil === undefined),
    ).toBe(true);
    expect(await store.set('keyv:after-fuzz', 'still fine')).toBe(true);
    expect(await store.get('keyv:after-fuzz')).toBe('still fine');
  }

  beforeAll(async () => {
    members = await Promise.all([1, 2, 3].map((i) => startMemcached({ host: `127.0.9.${i}` })));
    for (const member of members) {
      expect(await member.command(`set ${CANARY} 0 0 5\r\nalive\r\n`)).toBe('STORED\r\n');
    }
    process.on('unhandledRejection', onUnhandled);
  });

  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
  });

  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await stopAllMemcached();
    console.info(
      `fuzz: ${figures.inputs} inputs fuzzed (seed ${SEED}), ${figures.roundTripped} round-tripped, ` +
        `${figures.refused} refused cleanly, 0 lost, ${unhandled.length} unhandled rejections`,
    );
  });

  /** Store, read back: the value itself, or (refused) false and then nothing at all. */
  async function roundTrip(
    set: () => Promise<boolean>,
    get: () => Promise<unknown>,
    value: unknown,
    size: number,
  ) {
    figures.inputs++;
    const stored = await set();
    const read = await get();
    if (stored) {
      figures.roundTripped++;
      expect(read).toEqual(value);
    } else {
      figures.refused++;
      // Only values over the size limit may be refused; the old value is gone with them.
      expect(size).toBeGreaterThan(1_000_000);
      expect(read).toBeUndefined();
    }
  }

  it('round-trips any key and value through Keyv, or refuses that one value cleanly', async () => {
    const { store, errors } = newStore();
    const keyv = new Keyv({ store, namespace: 'fuzz' });
    await keyv.set('warm-up', 1);
    const connectionsBefore = await Promise.all(
      members.map(async (m) => Number((await m.stats()).total_connections)),
    );
    await fc.assert(
      fc.asyncProperty(keyArb, keyvValue, async (key, value) => {
        const size = typeof value === 'string' ? value.length : 0;
        await roundTrip(
          () => keyv.set(key, value),
          () => keyv.get(key),
          value,
          size,
        );
      }),
      { seed: SEED, numRuns: 1_000 },
    );
    // Distinct hostile keys stay distinct (no two share a memcached key).
    const keys = fc.sample(keyArb, { seed: SEED, numRuns: 200 });
    const unique = [...new Set(keys)];
    await keyv.setMany(unique.map((key, i) => ({ key, value: i })));
    expect(await keyv.get(unique)).toEqual(unique.map((_, i) => i));
    figures.inputs += unique.length;
    await expectUnharmed(store, errors, connectionsBefore);
    expect(unhandled).toEqual([]);
  });

  it('round-trips raw strings and bytes given to the store directly, or refuses that one value cleanly', async () => {
    // Multi-gets as meta commands here (the Keyv test above reads them as text).
    const { store, errors } = newStore(60_000);
    await store.set('keyv:warm-up', '1');
    const connectionsBefore = await Promise.all(
      members.map(async (m) => Number((await m.stats()).total_connections)),
    );
    await fc.assert(
      fc.asyncProperty(keyArb, storeValue, async (key, value) => {
        const size = Buffer.isBuffer(value) ? value.length : value.length;
        await roundTrip(
          () => store.set(`keyv:${key}`, value),
          () => store.get(`keyv:${key}`),
          value,
          size,
        );
        // Multi-key paths too: the same key in a batch with a plain one.
        expect(await store.getMany([`keyv:${key}`, 'keyv:warm-up'])).toEqual([
          (await store.get(`keyv:${key}`)) ?? undefined,
          '1',
        ]);
      }),
      { seed: SEED + 1, numRuns: 600 },
    );
    await expectUnharmed(store, errors, connectionsBefore);
    expect(unhandled).toEqual([]);
  });
});
