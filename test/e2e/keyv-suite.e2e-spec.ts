import { keyvApiTests, keyvNamespaceTest, keyvValueTests } from '@keyv/test-suite';
import Keyv from 'keyv';
import * as test from 'vitest';
import { FixedMembers } from '../../lib/memcached/fixed-members.js';
import { MemcachedStore } from '../../lib/memcached/memcached.store.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { memcachedAvailable, startMemcached, stopAllMemcached } from '../support/memcached.js';

// This file's loopback range: 127.0.3.x. Keyv's own conformance suite, on real memcached members.
const run = memcachedAvailable();
const quiet = { log: () => {}, error: () => {}, warn: () => {} };

test.describe.runIf(run)('@keyv/test-suite against MemcachedStore', () => {
  let servers: MemcachedProcess[] = [];
  const stores: MemcachedStore[] = [];

  // The suite wants a fresh adapter per call; each one is disconnected after the file.
  const store = (): MemcachedStore => {
    const created = new MemcachedStore({
      source: new FixedMembers(servers.map((s) => ({ host: s.host, port: s.port }))),
      logger: quiet,
    });
    stores.push(created);
    return created;
  };

  test.beforeAll(async () => {
    servers = await Promise.all([1, 2].map((i) => startMemcached({ host: `127.0.3.${i}` })));
  });

  test.afterAll(async () => {
    await Promise.all(stores.map((s) => s.disconnect()));
    await stopAllMemcached();
  });

  test.describe('API', () => keyvApiTests(test, Keyv, store));
  test.describe('values', () => keyvValueTests(test, Keyv, store));
  test.describe('namespaces', () => keyvNamespaceTest(test, Keyv, store));

  test.it('created real adapters (the suite did not fall back to an in-memory Map)', () => {
    test.expect(stores.length).toBeGreaterThan(20);
    test.expect(stores.some((s) => s.stats().totals.ops > 0)).toBe(true);
  });
});
