import { keyvApiTests, keyvNamespaceTest, keyvValueTests } from '@keyv/test-suite';
import Keyv from 'keyv';
import * as test from 'vitest';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LocalTierStore } from './local-tier.store.js';

// Keyv's own conformance suite, a fresh adapter per call.
describe('@keyv/test-suite against LocalTierStore', () => {
  const store = () => new LocalTierStore({ max: 1_000, ttl: 60_000 });
  describe('API', () => keyvApiTests(test, Keyv, store));
  describe('values', () => keyvValueTests(test, Keyv, store));
  describe('namespaces', () => keyvNamespaceTest(test, Keyv, store));
});

describe('LocalTierStore', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('keeps at most max entries, pushing out the least recently used', async () => {
    const store = new LocalTierStore({ max: 2, ttl: 60_000 });
    await store.set('a', 'A');
    await store.set('b', 'B');
    expect(await store.get('a')).toBe('A'); // a is now the most recently used
    await store.set('c', 'C');
    expect(store.size).toBe(2);
    expect(await store.get('b')).toBeUndefined();
    expect(await store.get('a')).toBe('A');
    expect(await store.get('c')).toBe('C');
  });

  it('caps each entry at local.ttl, and keeps a shorter ttl of its own', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const store = new LocalTierStore({ max: 10, ttl: 1_000 });
    await store.set('forever', 'x'); // no ttl of its own
    await store.set('long', 'y', 60_000);
    await store.set('short', 'z', 200);
    vi.setSystemTime(1_000_199);
    expect(await store.get('short')).toBe('z');
    vi.setSystemTime(1_000_200);
    expect(await store.get('short')).toBeUndefined();
    expect(await store.has('long')).toBe(true);
    vi.setSystemTime(1_000_999);
    expect(await store.get('forever')).toBe('x');
    expect(await store.get('long')).toBe('y');
    vi.setSystemTime(1_001_000);
    expect(await store.get('forever')).toBeUndefined();
    expect(await store.has('long')).toBe(false);
  });

  it('deletes and clears', async () => {
    const store = new LocalTierStore({ max: 10, ttl: 60_000 });
    await store.set('a', 1);
    await store.set('b', 2);
    await store.set('c', 3);
    expect(await store.delete('a')).toBe(true);
    expect(await store.delete('a')).toBe(false);
    expect(await store.deleteMany(['b', 'missing'])).toBe(true);
    expect(await store.getMany(['a', 'b', 'c'])).toEqual([undefined, undefined, 3]);
    await store.clear();
    expect(store.size).toBe(0);
  });

  it('works as a Keyv store, handing out a fresh copy on every hit', async () => {
    const keyv = new Keyv({ store: new LocalTierStore({ max: 10, ttl: 60_000 }), namespace: 'n' });
    await keyv.set('k', { list: [1] });
    const first = await keyv.get<{ list: number[] }>('k');
    first?.list.push(2);
    expect(await keyv.get('k')).toEqual({ list: [1] });
    expect(await keyv.get(['k', 'missing'])).toEqual([{ list: [1] }, undefined]);
    expect(await keyv.delete('k')).toBe(true);
    expect(await keyv.get('k')).toBeUndefined();
  });
});
