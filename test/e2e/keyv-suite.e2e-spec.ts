import { Buffer } from 'node:buffer';
import { keyvApiTests, keyvNamespaceTest, keyvValueTests } from '@keyv/test-suite';
import Keyv from 'keyv';
import type { KeyvOptions, KeyvStoreAdapter, StoredData } from 'keyv';
import * as test from 'vitest';
import { keyvDeserialize, withStringEntryShortcut } from '../../lib/cache/keyv-serializer.js';
import { FixedMembers } from '../../lib/discovery/fixed-members.js';
import { MemcachedStore } from '../../lib/memcached/store/memcached.store.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { memcachedAvailable, startMemcached, stopAllMemcached } from '../support/memcached.js';
import { scaled } from '../support/timing.js';
import { quietLogger } from '../support/quiet-logger.js';

// This file's loopback range: 127.0.3.x. Keyv's own conformance suite, on real memcached members,
// with Keyv's defaults and with Keyv built as K8sModule builds it.
const run = memcachedAvailable();

/**
 * Calls still running. A few of the suite's tests start a call and end without awaiting it
 * (`.delete(key) returns a Promise`, `.set(key, value) returns a Promise`). Every store of this
 * file works on the same members and namespace, each on its own connections, which memcached serves
 * in no set order: such a call could load the generation the next test's `beforeEach` cleared to
 * and then delete (or set) `foo` after that test's own `set`, which then saw `delete` resolve to
 * false. Each test therefore ends only when the calls it started have.
 */
const running = new Set<Promise<unknown>>();

function tracked<T>(call: Promise<T>): Promise<T> {
  running.add(call);
  const done = (): boolean => running.delete(call);
  call.then(done, done);
  return call;
}

/** MemcachedStore whose Keyv-facing calls are tracked in `running`. */
class TrackedStore extends MemcachedStore {
  override get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    return tracked(super.get<Value>(key));
  }
  override getMany<Value>(keys: string[]): Promise<Array<StoredData<Value | undefined>>> {
    return tracked(super.getMany<Value>(keys));
  }
  override set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    return tracked(super.set(key, value, ttl));
  }
  override setMany(
    entries: Array<{ key: string; value: unknown; ttl?: number }>,
  ): Promise<boolean[]> {
    return tracked(super.setMany(entries));
  }
  override delete(key: string): Promise<boolean> {
    return tracked(super.delete(key));
  }
  override deleteMany(keys: string[]): Promise<boolean> {
    return tracked(super.deleteMany(keys));
  }
  override clear(): Promise<void> {
    return tracked(super.clear());
  }
}

/** Keyv as K8sModule builds it: `keyvDeserialize` to read, the default serializer shortcut. */
class ModuleKeyv extends Keyv {
  constructor(store?: KeyvStoreAdapter | KeyvOptions, options?: Omit<KeyvOptions, 'store'>) {
    super(store, { deserialize: keyvDeserialize, ...options });
    if (this.serialize) this.serialize = withStringEntryShortcut(this.serialize);
  }
}

test.describe.runIf(run)('@keyv/test-suite against MemcachedStore', () => {
  let servers: MemcachedProcess[] = [];
  const stores: MemcachedStore[] = [];

  // The suite wants a fresh adapter per call; each one is disconnected after the file.
  const store = (): MemcachedStore => {
    const created = new TrackedStore({
      source: new FixedMembers(servers.map((s) => ({ host: s.host, port: s.port }))),
      logger: quietLogger,
      // Conformance, not timeouts: a fresh store per call must not miss on a busy machine.
      connectTimeout: scaled(5_000),
      commandTimeout: scaled(5_000),
    });
    stores.push(created);
    return created;
  };

  test.beforeAll(async () => {
    servers = await Promise.all([1, 2].map((i) => startMemcached({ host: `127.0.3.${i}` })));
  });

  // After the suites' own afterEach hooks (theirs are nested deeper). Keyv hands a call to the
  // store within microtasks, so after one turn of the event loop every call is in `running`.
  test.afterEach(async () => {
    await new Promise((resolve) => setImmediate(resolve));
    await Promise.all(running);
  });

  test.afterAll(async () => {
    // Checked after whichever suite tests ran, in any order: they used real adapters (the suite
    // did not fall back to an in-memory Map).
    const used = stores.some((s) => s.stats().totals.ops > 0);
    await Promise.all(stores.map((s) => s.disconnect()));
    await stopAllMemcached();
    test.expect(used, 'no MemcachedStore the suite created saw an operation').toBe(true);
  });

  test.describe('Keyv defaults', () => {
    test.describe('API', () => keyvApiTests(test, Keyv, store));
    test.describe('values', () => keyvValueTests(test, Keyv, store));
    test.describe('namespaces', () => keyvNamespaceTest(test, Keyv, store));
  });

  test.describe('Keyv as K8sModule builds it', () => {
    test.describe('API', () => keyvApiTests(test, ModuleKeyv, store));
    test.describe('values', () => keyvValueTests(test, ModuleKeyv, store));

    test.it('reads through keyvDeserialize (the subclass is what the suite used)', async () => {
      const keyv = new ModuleKeyv({ store: store() });
      test.expect(keyv.deserialize).toBe(keyvDeserialize);
      await keyv.set('string', ':base64:not a buffer "quoted"');
      test.expect(await keyv.get('string')).toBe(':base64:not a buffer "quoted"');
      await keyv.set('buffer', Buffer.from('bytes'));
      test.expect(await keyv.get('buffer')).toStrictEqual(Buffer.from('bytes'));
    });
  });
});
