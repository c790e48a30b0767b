import Keyv from 'keyv';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { LeaseReply } from '../memcached/store/memcached.store.js';
import type { FleetWrapOptions, LeaseStore } from './fleet-wrap.js';
import { FleetWrap } from './fleet-wrap.js';
import { keyvDeserialize } from './keyv-serializer.js';

/**
 * memcached's lease rules for one process, in memory (the e2e specs run the real thing across
 * pods): a miss vivifies a placeholder and wins; a holder's W is handed out once per item; a
 * forced recache wins when nobody holds it; fills and releases check the CAS.
 */
class FakeLeases implements LeaseStore {
  readonly items = new Map<string, { value?: string; cas: number; sent: boolean }>();
  text = false;
  failing = false;
  leases = 0;
  private cas = 0;

  async lease(key: string, leaseMs: number, force: boolean): Promise<LeaseReply | undefined> {
    this.leases++;
    if (this.failing) return undefined;
    let item = this.items.get(key);
    if (this.text) return reply(item?.value, false, false, '', false);
    if (item === undefined) {
      if (leaseMs === 0) return reply(undefined, false, false, '', true);
      item = { cas: ++this.cas, sent: true };
      this.items.set(key, item);
      return reply(undefined, true, false, String(item.cas), true, true);
    }
    const win = force && !item.sent;
    if (win) item.sent = true;
    return reply(
      item.value,
      win,
      item.sent && !win,
      String(item.cas),
      true,
      item.value === undefined,
    );
  }

  async fill(key: string, value: unknown, _ttl: number | undefined, cas: string): Promise<boolean> {
    const item = this.items.get(key);
    if (item === undefined || String(item.cas) !== cas) return false;
    this.items.set(key, { value: value as string, cas: ++this.cas, sent: false });
    return true;
  }

  async release(key: string, cas: string): Promise<boolean> {
    const item = this.items.get(key);
    if (item === undefined || String(item.cas) !== cas) return false;
    return this.items.delete(key);
  }
}

function reply(
  value: string | undefined,
  win: boolean,
  pending: boolean,
  cas: string,
  leased: boolean,
  placeholder = false,
): LeaseReply {
  return { value, win, pending, stale: false, placeholder, cas, ttl: -1, leased };
}

const OPTIONS: FleetWrapOptions = {
  ttl: 0,
  refreshThreshold: 0,
  staleWhileRevalidate: 0,
  leaseTtl: 3_000,
  leaseWait: 200,
};

function setup(options: Partial<FleetWrapOptions> = {}) {
  const store = new FakeLeases();
  const remote = new Keyv({ namespace: 'ns', deserialize: keyvDeserialize });
  const fleet = new FleetWrap(remote, undefined, store, { ...OPTIONS, ...options });
  return { store, remote, fleet };
}

/** An entry as the remote Keyv would serialize it. */
const entry = (value: unknown, expires?: number): string => JSON.stringify({ value, expires });

afterEach(() => {
  vi.restoreAllMocks();
});

describe('FleetWrap', () => {
  it('takes the lease on a miss, fills with its CAS, and then hits', async () => {
    const { store, fleet } = setup();
    const fn = vi.fn(async () => ({ n: 1 }));
    expect(await fleet.run('k', fn, { ttl: 60_000 })).toMatchObject({
      value: { n: 1 },
      source: 'loaded',
    });
    expect(await fleet.run('k', fn, {})).toMatchObject({ value: { n: 1 }, source: 'hit' });
    expect(fn).toHaveBeenCalledTimes(1);
    expect(JSON.parse(store.items.get('ns:k')!.value!)).toMatchObject({ value: { n: 1 } });
  });

  it('keeps cache-manager’s signature: a ttl of the value, raw results', async () => {
    const { fleet } = setup();
    const before = Date.now();
    const raw = (await fleet.wrap('k', () => 'v', {
      ttl: (v: string) => v.length * 10_000,
      raw: true,
    })) as unknown as {
      value: string;
      expires: number;
    };
    expect(raw.value).toBe('v');
    expect(raw.expires).toBeGreaterThanOrEqual(before + 10_000);
    expect(raw.expires).toBeLessThanOrEqual(Date.now() + 10_000);
  });

  it('shares one run between concurrent callers in the process', async () => {
    const { fleet } = setup();
    let runs = 0;
    const fn = async () => {
      runs++;
      await new Promise((resolve) => setTimeout(resolve, 20));
      return runs;
    };
    const results = await Promise.all([fleet.run('k', fn, {}), fleet.run('k', fn, {})]);
    expect(results.map((r) => [r.value, r.source])).toEqual([
      [1, 'loaded'],
      [1, 'waited'],
    ]);
  });

  it('waits at most leaseWait for another holder, then runs the function itself', async () => {
    const { store, fleet } = setup({ leaseWait: 100 });
    store.items.set('ns:k', { cas: 1, sent: true }); // someone else's placeholder, never filled
    const started = Date.now();
    expect(await fleet.run('k', () => 'mine', {})).toMatchObject({
      value: 'mine',
      source: 'loaded',
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(50);
    expect(store.leases).toBeGreaterThan(2); // it polled
  });

  it('returns the holder’s value as soon as it is there', async () => {
    const { store, fleet } = setup({ leaseWait: 5_000 });
    store.items.set('ns:k', { cas: 1, sent: true });
    setTimeout(() => void store.fill('ns:k', entry('theirs'), undefined, '1'), 30);
    const fn = vi.fn(() => 'mine');
    expect(await fleet.run('k', fn, {})).toMatchObject({ value: 'theirs', source: 'waited' });
    expect(fn).not.toHaveBeenCalled();
  });

  it('gives the lease back when the function throws', async () => {
    const { store, fleet } = setup();
    await expect(
      fleet.run('k', () => Promise.reject(new Error('database down')), {}),
    ).rejects.toThrow('database down');
    expect(store.items.has('ns:k')).toBe(false);
  });

  it('never serves a value past its expiry: one caller wins its refresh (forced), the others wait', async () => {
    const { store, fleet } = setup();
    store.items.set('ns:k', { value: entry('old', Date.now() - 1), cas: 5, sent: false });
    const fn = vi.fn(() => 'new');
    expect(await fleet.run('k', fn, {})).toMatchObject({ value: 'new', source: 'loaded' });
    expect(fn).toHaveBeenCalledTimes(1);
    expect(await fleet.run('k', fn, {})).toMatchObject({ value: 'new', source: 'hit' });
  });

  it('with leases off, an expired value runs the function here (cache-manager’s behaviour)', async () => {
    const { store, fleet } = setup({ leaseTtl: 0 });
    store.items.set('ns:k', { value: entry('old', Date.now() - 1), cas: 5, sent: false });
    expect(await fleet.run('k', () => 'new', {})).toMatchObject({ value: 'new', source: 'loaded' });
    expect(await fleet.run('j', () => 'miss', {})).toMatchObject({ source: 'loaded' });
    expect(store.items.get('ns:j')).toBeUndefined(); // no placeholder was made
  });

  it('serves a value in its refresh window and refreshes it once in the background', async () => {
    const { store, fleet } = setup({ refreshThreshold: 10_000 });
    store.items.set('ns:k', { value: entry('old', Date.now() + 5_000), cas: 5, sent: false });
    let resolve!: (value: string) => void;
    const fn = vi.fn(() => new Promise<string>((r) => (resolve = r)));
    const first = await fleet.run('k', fn, {});
    const second = await fleet.run('k', fn, {});
    expect([first.value, first.source, second.value]).toEqual(['old', 'stale', 'old']);
    expect(fn).toHaveBeenCalledTimes(1);
    resolve('new');
    await vi.waitFor(() => expect(JSON.parse(store.items.get('ns:k')!.value!).value).toBe('new'));
  });

  it('a refreshThreshold of the value decides the window per value', async () => {
    const { store, fleet } = setup();
    store.items.set('ns:k', { value: entry('old', Date.now() + 5_000), cas: 5, sent: false });
    const fn = vi.fn(() => 'new');
    await fleet.run('k', fn, { refreshThreshold: () => 1_000 });
    expect(fn).not.toHaveBeenCalled();
    await fleet.run('k', fn, { refreshThreshold: () => 10_000 });
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('without leases (a text member) or without a member, runs the function here', async () => {
    const text = setup();
    text.store.text = true;
    expect(await text.fleet.run('k', () => 'a', { ttl: 1_000 })).toMatchObject({
      source: 'loaded',
    });
    expect(await text.remote.get('k')).toBe('a'); // written plainly, through Keyv
    const down = setup();
    down.store.failing = true;
    expect(await down.fleet.run('k', () => 'b', {})).toMatchObject({
      value: 'b',
      source: 'loaded',
    });
  });
});
