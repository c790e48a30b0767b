import { Buffer } from 'node:buffer';
import { keyvApiTests, keyvNamespaceTest, keyvValueTests } from '@keyv/test-suite';
import Keyv from 'keyv';
import type { KeyvOptions, KeyvStoreAdapter } from 'keyv';
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
    const created = new MemcachedStore({
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
