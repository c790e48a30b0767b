import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemcachedError } from '../../lib/errors/memcached.errors.js';
import { FixedMembers } from '../../lib/discovery/fixed-members.js';
import { HashRing } from '../../lib/memcached/ring/hash-ring.js';
import { MemcachedStore } from '../../lib/memcached/store/memcached.store.js';
import { HostileMember } from '../support/hostile-member.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { memcachedAvailable, startMemcached, stopAllMemcached } from '../support/memcached.js';
import { quietLogger } from '../support/quiet-logger.js';
import { sleep } from '../support/wait-for.js';

// This file's loopback range: 127.0.64.x. Issue 12 item 6: start-up and shutdown with a member
// that never answers (a silent hostile member) beside a real one.
const run = memcachedAvailable();
const COMMAND_TIMEOUT = 1_500;

describe.runIf(run)('start-up and shutdown beside a silent member', () => {
  let real: MemcachedProcess;
  let silent: HostileMember;

  beforeAll(async () => {
    real = await startMemcached({ host: '127.0.64.1' });
    silent = await HostileMember.start('127.0.64.2');
    silent.script = () => undefined;
  });

  afterAll(async () => {
    await silent?.stop();
    await stopAllMemcached();
  });

  function newStore(): MemcachedStore {
    return new MemcachedStore({
      source: new FixedMembers([{ host: real.host, port: real.port }, silent.member]),
      logger: quietLogger,
      commandTimeout: COMMAND_TIMEOUT,
      connectTimeout: 500,
      failureLimit: 100,
    });
  }

  it('the first get waits about one commandTimeout, not one for the generation and one for the get', async () => {
    // A known generation on the real member, so the test can pick a key the silent member owns.
    const token = '000000001.abcdefgh';
    await real.command(`set st:~gen 0 0 ${token.length}\r\n${token}\r\n`, (r) =>
      r.endsWith('\r\n'),
    );
    const ring = new HashRing([
      { host: real.host, port: real.port },
      { host: silent.host, port: silent.port },
    ]);
    const key = Array.from({ length: 100 }, (_, i) => `k${i}`).find(
      (k) => ring.members[ring.indexOf(`st:${token}:${k}`)].host === silent.host,
    )!;
    const store = newStore();
    store.namespace = 'st';
    try {
      const started = Date.now();
      expect(await store.get(`st:${key}`)).toBeUndefined();
      const waited = Date.now() - started;
      console.log(
        `first get beside a silent member: ${waited} ms (commandTimeout ${COMMAND_TIMEOUT})`,
      );
      // Before the fix: the generation load's timeout, then the get's own: over 2 × 1,500 ms.
      expect(waited).toBeLessThan(2 * COMMAND_TIMEOUT);
      // The get itself did go to the silent member (the control: it owns the key): its
      // generation read, then the get.
      const stats = store.stats().members.find((m) => m.member === silent.id)!;
      expect(stats.ops).toBe(2);
    } finally {
      await store.disconnect();
    }
  });

  it('disconnect() during the first generation load: a silent miss, no error, no prefix left', async () => {
    const store = newStore();
    const errors: MemcachedError[] = [];
    store.on('error', (error: MemcachedError) => errors.push(error));
    await store.ready();
    const pending = store.get('race-key');
    // The generation load now waits on the silent member.
    await sleep(200);
    await store.disconnect();
    expect(await pending).toBeUndefined();
    expect(await store.set('race-key', 'v')).toBe(false);
    expect(errors).toEqual([]);
  });
});
