import Keyv from 'keyv';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MemcachedError } from '../../lib/errors/memcached.errors.js';
import { MemcachedMemberError } from '../../lib/errors/memcached.errors.js';
import { MemcachedStore } from '../../lib/memcached/store/memcached.store.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { memcachedAvailable, startMemcached, stopAllMemcached } from '../support/memcached.js';
import { VerifiedLoad } from '../support/verified-load.js';
import { quietLogger } from '../support/quiet-logger.js';
import { sleep } from '../support/wait-for.js';

// This file's loopback range: 127.0.7.x.
const run = memcachedAvailable();
const WORKERS = 64;
const KEYS = 10_000;
const COMMAND_TIMEOUT = 400;
/** Wall-clock bound of each load phase, in ms (operations per worker are bounded too). */
const PHASE_MS = 3_000;

describe.runIf(run)('correctness under load', () => {
  let members: MemcachedProcess[];
  const cleanups: Array<() => Promise<void> | void> = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);

  beforeAll(async () => {
    members = await Promise.all([1, 2, 3].map((i) => startMemcached({ host: `127.0.7.${i}` })));
    process.on('unhandledRejection', onUnhandled);
  });

  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
  });

  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await stopAllMemcached();
  });

  it('never matches a reply to another request: 64 workers, 10,000 keys, 3 members, hung members', async () => {
    const store = new MemcachedStore({
      host: members.map((m) => m.id).join(','),
      refreshInterval: 0,
      commandTimeout: COMMAND_TIMEOUT,
      connectTimeout: 1_000,
      // Never eject here: commands keep going to the member that just timed out, on a new
      // connection, while the old one may still get its late replies.
      failureLimit: 1_000_000,
      logger: quietLogger,
    });
    cleanups.push(() => store.disconnect());
    const errors: MemcachedError[] = [];
    store.on('error', (error: MemcachedError) => errors.push(error));
    const ejections: string[] = [];
    store.on('eject', (member: string) => ejections.push(member));
    const load = new VerifiedLoad(new Keyv({ store, namespace: 'load' }), {
      workers: WORKERS,
      keys: KEYS,
      failures: () => errors.length,
    });

    // Calm: every value read right after its set must be exactly that value.
    const calm = await load.run(PHASE_MS);
    expect(calm.lost).toBe(0);
    expect(calm.wrong).toBe(0);
    expect(calm.verified).toBeGreaterThan(5_000);

    // Twice: a member hangs past the command timeout while 64 workers keep its connection
    // busy, then wakes up and answers the commands its client gave up on.
    let afterHang = 0;
    for (const member of [members[0], members[1]]) {
      const running = load.run(PHASE_MS);
      await sleep(300);
      await member.freeze();
      await sleep(COMMAND_TIMEOUT * 3);
      member.thaw();
      afterHang += (await running).verified;
    }

    // Calm again: no member was ejected, so nothing moved.
    afterHang += (await load.run(PHASE_MS)).verified;

    const timeouts = errors.filter(
      (e) =>
        e instanceof MemcachedMemberError && /timeout/i.test(String((e.cause as Error).message)),
    );
    const { total } = load;
    console.info(
      `load: ${total.ops} operations (${total.sets} sets, ${total.setsFailed} failed), ` +
        `${total.verified} values verified (${total.hits} hits), 2 members hung, ` +
        `${timeouts.length} command timeouts, ${total.wrong} wrong, ${total.lost} lost, ` +
        `${total.rejected} rejected, ${unhandled.length} unhandled rejections`,
    );
    expect(load.wrongSamples).toEqual([]);
    expect(total.wrong).toBe(0);
    expect(total.lost).toBe(0);
    expect(total.rejected).toBe(0);
    expect(unhandled).toEqual([]);
    // The hangs did what they are for: commands timed out on busy connections...
    expect(timeouts.length).toBeGreaterThan(10);
    expect(total.setsFailed).toBeGreaterThan(0);
    expect(ejections).toEqual([]);
    // ...and the same members kept serving afterwards, on new connections.
    expect(afterHang).toBeGreaterThan(5_000);
    expect(store.stats().members.every((m) => m.hits > 100)).toBe(true);
    const stats = await Promise.all(members.map((m) => m.stats()));
    expect(stats.every((s) => Number(s.curr_items) > KEYS / 6)).toBe(true);
    // No miss above can be an eviction.
    expect(stats.map((s) => s.evictions)).toEqual(['0', '0', '0']);
  });
});
