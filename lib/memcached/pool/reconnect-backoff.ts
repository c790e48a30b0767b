import { memberId } from '../../discovery/member.js';
import { MemcachedMemberError } from '../../errors/memcached.errors.js';
import type { LinkFactory, MemberLink, StoreStatus } from '../protocol/member-link.js';

/** The second reconnect attempt waits up to this long, in ms; each later one twice as long. */
export const RECONNECT_BASE_MS = 100;
/** No reconnect attempt waits longer than this, in ms: an endpoint that is back is used again within it. */
export const RECONNECT_MAX_MS = 2_000;

/**
 * How long to wait before the next connection after `failures` consecutive connection failures:
 * none after the first (a connection that dropped is replaced at once), then 100, 200, 400 … ms,
 * at most `RECONNECT_MAX_MS`, each scaled by a random factor from ½ to 1 so that processes that
 * lost the endpoint together do not come back in step.
 */
export function reconnectDelay(failures: number, random: () => number = Math.random): number {
  if (failures <= 1) return 0;
  const ceiling = Math.min(RECONNECT_BASE_MS * 2 ** (failures - 2), RECONNECT_MAX_MS);
  return Math.round(ceiling * (0.5 + random() / 2));
}

/** Clock and randomness of the back-off (unit specs pass their own). */
export interface BackoffClock {
  now(): number;
  random(): number;
}

const SYSTEM_CLOCK: BackoffClock = { now: Date.now, random: Math.random };

/**
 * Links that reconnect with a bounded back-off: after a connection-class failure
 * (`MemcachedMemberError`: refused, reset, timed out, TLS, protocol), commands issued before the
 * back-off ends fail at once instead of each trying to connect, so a process makes at most one
 * connection attempt per back-off step, and a call never waits on more than one attempt. Failures
 * of commands sent before the latest counted failure belong to the same outage and do not grow the
 * back-off; the first command that succeeds resets it. For members that are never ejected (see
 * `MemcachedPoolOptions.endpointMode`), where nothing else spaces out the attempts.
 */
export function reconnectWithBackoff(
  create: LinkFactory,
  clock: BackoffClock = SYSTEM_CLOCK,
): LinkFactory {
  return (member, options, events) =>
    new BackoffLink(memberId(member), create(member, options, events), clock);
}

class BackoffLink implements MemberLink {
  /** Consecutive connection-class failures (one per outage step, not per command). */
  private failures = 0;
  /** No command is sent before this (epoch ms). */
  private retryAt = 0;
  /** Counted failures so far: a command remembers it, so one outage step is counted once. */
  private epoch = 0;

  constructor(
    private readonly id: string,
    private readonly link: MemberLink,
    private readonly clock: BackoffClock,
  ) {}

  get(key: string): Promise<unknown> {
    return this.run(() => this.link.get(key));
  }

  getMany(keys: readonly string[]): Promise<unknown[]> {
    return this.run(() => this.link.getMany(keys));
  }

  store(verb: 'set' | 'add', key: string, value: unknown, exptime: number): Promise<StoreStatus> {
    return this.run(() => this.link.store(verb, key, value, exptime));
  }

  delete(key: string): Promise<boolean> {
    return this.run(() => this.link.delete(key));
  }

  stats(): Promise<Array<[string, string]>> {
    return this.run(() => this.link.stats());
  }

  close(): void {
    this.link.close();
  }

  private run<T>(send: () => Promise<T>): Promise<T> {
    const wait = this.retryAt - this.clock.now();
    if (wait > 0) {
      return Promise.reject(
        new MemcachedMemberError(
          this.id,
          new Error(
            `not connected: ${this.failures} connection attempts in a row failed, the next one ` +
              `in ${wait} ms (reconnect back-off)`,
          ),
        ),
      );
    }
    const epoch = this.epoch;
    return send().then(
      (result) => {
        if (epoch === this.epoch) this.failures = 0;
        return result;
      },
      (error: unknown) => {
        if (error instanceof MemcachedMemberError && epoch === this.epoch) {
          this.epoch++;
          this.failures++;
          this.retryAt = this.clock.now() + reconnectDelay(this.failures, this.clock.random);
        }
        throw error;
      },
    );
  }
}
