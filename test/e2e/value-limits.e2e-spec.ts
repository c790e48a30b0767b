import Keyv from 'keyv';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  FixedMembers,
  MemcachedOversizedValueError,
  MemcachedStore,
  MemcachedValueEncodingError,
  MemcachedValueTooLargeError,
} from 'nestjs-k8s';
import type { MemcachedStoreOptions } from 'nestjs-k8s';
import { memcachedAvailable, startMemcached, stopAllMemcached } from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { quietLogger } from '../support/quiet-logger.js';

// This file's loopback range: 127.0.74.x. What a store does with values it cannot send or read:
// too large for this process, or a string UTF-8 cannot carry.

const OTHER_KEYS = Array.from({ length: 100 }, (_, i) => `other-${i}`);

describe.runIf(memcachedAvailable())('values over the limits', () => {
  let member: MemcachedProcess;
  const stores: MemcachedStore[] = [];

  beforeEach(async () => {
    member = await startMemcached({ host: '127.0.74.1' });
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.disconnect()));
    await stopAllMemcached();
  });

  function newStore(options: Partial<MemcachedStoreOptions> = {}): {
    store: MemcachedStore;
    errors: Error[];
  } {
    const store = new MemcachedStore({
      source: new FixedMembers([{ host: member.host, port: member.port }]),
      logger: quietLogger,
      ...options,
    });
    const errors: Error[] = [];
    store.on('error', (error: Error) => errors.push(error));
    stores.push(store);
    return { store, errors };
  }

  /** Connections memcached accepted so far, this query's own included. */
  const connectionsOpened = async (): Promise<number> =>
    Number((await member.stats()).total_connections);

  it('a value over this process’s maxValueSize, written by another: a miss, counted; the member, its connection and the namespace stay', async () => {
    // Two pods: the writer allows 900 kB, the reader 100 kB.
    const writer = new Keyv({ store: newStore({ maxValueSize: 900_000 }).store, namespace: 'n' });
    const { store: readerStore, errors } = newStore({ maxValueSize: 100_000 });
    const reader = new Keyv({ store: readerStore, namespace: 'n' });
    for (const key of OTHER_KEYS) expect(await writer.set(key, `value of ${key}`)).toBe(true);
    const big = 'x'.repeat(500_000);
    expect(await writer.set('big', big)).toBe(true);
    // The writer reads it back: it is there.
    expect(await writer.get('big')).toBe(big);

    expect(await reader.get(OTHER_KEYS[0])).toBe(`value of ${OTHER_KEYS[0]}`);
    const opened = await connectionsOpened();
    expect(await reader.get('big')).toBeUndefined();
    expect(await reader.get(['big', OTHER_KEYS[1], 'big'])).toEqual([
      undefined,
      `value of ${OTHER_KEYS[1]}`,
      undefined,
    ]);

    // One event per command; the multi-get asked for the big key twice and got it twice.
    expect(errors.filter((e) => e instanceof MemcachedOversizedValueError)).toHaveLength(2);
    expect(errors.every((e) => e instanceof MemcachedOversizedValueError)).toBe(true);
    const [stats] = readerStore.stats().members;
    expect(stats).toMatchObject({
      oversizedValues: 3,
      protocolErrors: 0,
      failures: 0,
      ejections: 0,
      ejectedUntil: undefined,
    });
    // Every other key still hits, one at a time and in one multi-get, on the same connection.
    for (const key of OTHER_KEYS) expect(await reader.get(key)).toBe(`value of ${key}`);
    expect(await reader.get(OTHER_KEYS)).toEqual(OTHER_KEYS.map((key) => `value of ${key}`));
    // No connection of the reader was closed and opened again: only the stats query's own.
    expect(await connectionsOpened()).toBe(opened + 1);
  });

  it('an object whose serialized bytes exceed maxValueSize is refused before it is sent, and its old value goes', async () => {
    const { store, errors } = newStore({ maxValueSize: 10_000 });
    expect(await store.set('n:doc', { small: true })).toBe(true);
    expect(await store.get('n:doc')).toEqual({ small: true });
    const large = { rows: Array.from({ length: 1_000 }, (_, i) => ({ i, name: `row ${i}` })) };
    expect(await store.set('n:doc', large)).toBe(false);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(MemcachedValueTooLargeError);
    expect((errors[0] as MemcachedValueTooLargeError).size).toBe(
      Buffer.byteLength(JSON.stringify(large)),
    );
    // As memcached does with an item it refuses: the previous value is gone, not served stale.
    expect(await store.get('n:doc')).toBeUndefined();
    // The member did nothing wrong.
    expect(store.stats().members[0]).toMatchObject({ failures: 0, ejections: 0 });
    expect(await store.set('n:doc', { small: 'again' })).toBe(true);
    expect(await store.get('n:doc')).toEqual({ small: 'again' });
  });

  it('a string with a lone surrogate is refused with a clear error, never stored altered; through Keyv it round-trips', async () => {
    const { store, errors } = newStore();
    expect(await store.set('n:s', 'a\uD800b')).toBe(false);
    expect(errors[0]).toBeInstanceOf(MemcachedValueEncodingError);
    expect(errors[0].message).toMatch(/lone surrogate.*JSON\.stringify/);
    expect(await store.get('n:s')).toBeUndefined();
    // Well-formed text of every plane is stored as is.
    expect(await store.set('n:s', 'a\uD83D\uDE00b é')).toBe(true);
    expect(await store.get('n:s')).toBe('a\uD83D\uDE00b é');
    // Keyv serializes with JSON, which escapes a lone surrogate: exact round trip.
    const keyv = new Keyv({ store: newStore().store, namespace: 'k' });
    expect(await keyv.set('s', 'a\uD800b')).toBe(true);
    expect(await keyv.get('s')).toBe('a\uD800b');
  });
});
