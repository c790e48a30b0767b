import { describe, expect, it } from 'vitest';
import { MemcachedMemberError, MemcachedReplyError } from '../../errors/memcached.errors.js';
import type { MemberConnectionOptions, MemberLink } from '../protocol/member-link.js';
import {
  RECONNECT_BASE_MS,
  RECONNECT_MAX_MS,
  reconnectDelay,
  reconnectWithBackoff,
} from './reconnect-backoff.js';

const MEMBER = { host: 'mycache.example', port: 11211 };
const ID = 'mycache.example:11211';
const OPTIONS: MemberConnectionOptions = {
  connectTimeout: 100,
  commandTimeout: 100,
  maxConnections: 1,
  noDelay: true,
  maxValueSize: 1_000,
};
const EVENTS = { keyMismatch: () => {}, oversized: () => {}, protocolError: () => {} };

/** A link whose commands settle when the test says: `down` rejects them, otherwise they answer. */
class ScriptedLink implements MemberLink {
  down = false;
  sent = 0;
  private readonly pending: Array<() => void> = [];

  get(key: string): Promise<unknown> {
    return this.command(`value of ${key}`);
  }
  getMany(keys: readonly string[]): Promise<unknown[]> {
    return this.command(keys.map((key) => `value of ${key}`));
  }
  store(): Promise<'STORED'> {
    return this.command('STORED' as const);
  }
  delete(): Promise<boolean> {
    return this.command(true);
  }
  stats(): Promise<Array<[string, string]>> {
    return this.command([['uptime', '1']]);
  }
  close(): void {}

  /** Settle every command sent so far (each as `down` says now). */
  settle(): void {
    for (const settle of this.pending.splice(0)) settle();
  }

  private command<T>(answer: T): Promise<T> {
    this.sent++;
    return new Promise<T>((resolve, reject) =>
      this.pending.push(() =>
        this.down
          ? reject(new MemcachedMemberError(ID, new Error('ECONNREFUSED')))
          : resolve(answer),
      ),
    );
  }
}

function setup(random = 1) {
  const clock = { time: 1_000_000, now: () => clock.time, random: () => random };
  const inner = new ScriptedLink();
  const link = reconnectWithBackoff(() => inner, clock)(MEMBER, OPTIONS, EVENTS);
  /** Send a get and settle it now; resolves to 'ok', 'failed' (sent, failed) or 'refused' (not sent). */
  const attempt = async (): Promise<'ok' | 'failed' | 'refused'> => {
    const before = inner.sent;
    const result = link.get('k');
    inner.settle();
    try {
      await result;
      return 'ok';
    } catch (error) {
      expect(error).toBeInstanceOf(MemcachedMemberError);
      return inner.sent > before ? 'failed' : 'refused';
    }
  };
  return { clock, inner, link, attempt };
}

describe('reconnectDelay', () => {
  it('reconnects at once after the first failure, then doubles from the base up to the cap', () => {
    const most = (failures: number) => reconnectDelay(failures, () => 1);
    expect([1, 2, 3, 4, 5, 6, 7, 50].map(most)).toEqual([
      0,
      RECONNECT_BASE_MS,
      2 * RECONNECT_BASE_MS,
      4 * RECONNECT_BASE_MS,
      8 * RECONNECT_BASE_MS,
      16 * RECONNECT_BASE_MS,
      RECONNECT_MAX_MS,
      RECONNECT_MAX_MS,
    ]);
  });

  it('jitters each step down to half of it, never below', () => {
    expect(reconnectDelay(2, () => 0)).toBe(RECONNECT_BASE_MS / 2);
    expect(reconnectDelay(40, () => 0)).toBe(RECONNECT_MAX_MS / 2);
    for (let failures = 2; failures < 12; failures++) {
      const delay = reconnectDelay(failures);
      expect(delay).toBeGreaterThanOrEqual(reconnectDelay(failures, () => 0));
      expect(delay).toBeLessThanOrEqual(reconnectDelay(failures, () => 1));
    }
  });
});

describe('reconnectWithBackoff', () => {
  it('passes commands and their answers through while the member answers', async () => {
    const { link, inner } = setup();
    const value = link.get('a');
    const values = link.getMany(['a', 'b']);
    const stored = link.store('set', 'a', 'x', 0);
    inner.settle();
    expect(await value).toBe('value of a');
    expect(await values).toEqual(['value of a', 'value of b']);
    expect(await stored).toBe('STORED');
  });

  it('while the member is down: one attempt per back-off step, the calls between fail at once', async () => {
    const { clock, inner, attempt } = setup();
    inner.down = true;
    // The connection drops: the next command tries again at once.
    expect(await attempt()).toBe('failed');
    expect(await attempt()).toBe('failed');
    // Now 100 ms (random 1) until the next attempt: calls meanwhile are not sent.
    expect(await attempt()).toBe('refused');
    clock.time += RECONNECT_BASE_MS - 1;
    expect(await attempt()).toBe('refused');
    clock.time += 1;
    expect(await attempt()).toBe('failed');
    // 200 ms this time.
    clock.time += 2 * RECONNECT_BASE_MS - 1;
    expect(await attempt()).toBe('refused');
    clock.time += 1;
    expect(await attempt()).toBe('failed');
    // However long it stays down, no step is longer than the cap.
    for (let i = 0; i < 10; i++) {
      clock.time += RECONNECT_MAX_MS;
      expect(await attempt()).toBe('failed');
    }
    expect(await attempt()).toBe('refused');
    clock.time += RECONNECT_MAX_MS - 1;
    expect(await attempt()).toBe('refused');

    // Back: the first attempt after the step succeeds, and the back-off starts over.
    inner.down = false;
    clock.time += 1;
    expect(await attempt()).toBe('ok');
    inner.down = true;
    expect(await attempt()).toBe('failed');
    expect(await attempt()).toBe('failed');
    expect(await attempt()).toBe('refused');
  });

  it('counts the commands that fail together (one dropped connection) as one failure', async () => {
    const { inner, link, attempt } = setup();
    const inFlight = Array.from({ length: 20 }, (_, i) => link.get(`k${i}`));
    inner.down = true;
    inner.settle();
    const outcomes = await Promise.allSettled(inFlight);
    expect(outcomes.every((o) => o.status === 'rejected')).toBe(true);
    // Twenty failures of one connection: still the first failure, so a new connection at once.
    expect(await attempt()).toBe('failed');
    expect(await attempt()).toBe('refused');
  });

  it('tells why a call was not sent, and how long until the next attempt', async () => {
    const { inner, link, attempt } = setup();
    inner.down = true;
    await attempt();
    await attempt();
    await expect(link.get('k')).rejects.toThrow(
      /mycache\.example:11211 failed \(not connected: 2 connection attempts in a row failed, the next one in 100 ms/,
    );
  });

  it('does not back off on error replies or refused values: the connection is fine', async () => {
    const { clock } = setup();
    let replies = 0;
    const inner: MemberLink = {
      get: () => Promise.reject(new MemcachedReplyError(ID, 'SERVER_ERROR busy')),
      getMany: () => Promise.resolve([]),
      store: () => Promise.resolve('STORED'),
      delete: () => Promise.resolve(true),
      stats: () => Promise.resolve([]),
      close: () => {},
    };
    const link = reconnectWithBackoff(() => inner, clock)(MEMBER, OPTIONS, EVENTS);
    for (let i = 0; i < 5; i++) {
      await link.get('k').catch((error: unknown) => {
        expect(error).toBeInstanceOf(MemcachedReplyError);
        replies++;
      });
    }
    expect(replies).toBe(5);
    expect(await link.store('set', 'k', 'v', 0)).toBe('STORED');
  });
});
