import { randomBytes } from 'node:crypto';
import type { MemcachedError } from '../../errors/memcached.errors.js';
import {
  MemcachedMemberError,
  MemcachedReplyError,
  MemcachedValueError,
} from '../../errors/memcached.errors.js';
import { withDeadline } from '../../util/deadline.js';
import type { MemberLink } from '../protocol/member-connection.js';
import type { MemberState } from './member-state.js';

/**
 * The `uptime` a memcached process reports right after it starts, in seconds (its clock starts
 * 2 s in the past; some old versions start it 62 s back, which errs on the safe side: a restarted
 * member then reads as one that kept its data).
 */
const MEMCACHED_UPTIME_AT_START = 2;
/** The longest time out of the ring, as a multiple of `retryTimeout` (backoff cap). */
const MAX_BACKOFF = 16;
/** Ejected again within this long of its readmission (or 2 × retryTimeout): the backoff grows. */
const FLAP_WINDOW = 60_000;
/** While no member serves, ejected members are probed at least this often, in ms. */
const EMPTY_RING_PROBE_INTERVAL = 1_000;
/** Key of the probe's round trip: `~~~` starts no key the store sends (see `encodeKey`). */
const PROBE_KEY = '~~~nestjs-k8s-probe';
const PROBE_TIMEOUT = Symbol('probe timeout');

/**
 * Whether a failure says the member is broken (it counts towards ejection): every connection-class
 * and protocol failure, and `SERVER_ERROR` replies other than memcached's normal refusals of one
 * item (`out of memory storing object`, `object too large for cache`): a member that keeps
 * answering other server errors serves nothing.
 */
export function breaksMember(error: unknown): boolean {
  if (error instanceof MemcachedMemberError) return true;
  return (
    error instanceof MemcachedReplyError &&
    error.reply.startsWith('SERVER_ERROR') &&
    !/out of memory|too large/i.test(error.reply)
  );
}

/** What ejection needs from the pool. */
export interface EjectionHost {
  /** In the pool and the pool open. */
  isCurrent(state: MemberState): boolean;
  /** The set of members that serve changed. */
  ringChanged(): void;
  /** No member serves: the cache is off until one is back. */
  ringEmpty(): boolean;
  /** Writes and deletes sent so far (a member out meanwhile missed them). */
  writes(): number;
  /** A fresh connection to the member (the probe's own). */
  connect(state: MemberState): MemberLink;
  report(error: MemcachedError): void;
  /** A failure that breaks the member (after counting it). */
  memberFailed(state: MemberState, error: MemcachedError): void;
  ejected(state: MemberState, error: MemcachedMemberError): void;
  readmitted(state: MemberState, stale: boolean): void;
  /** The key the owner keeps on every member (see `PoolPolicy.restartMarker`). */
  restartMarker?(): string;
}

export interface EjectionOptions {
  readonly failureLimit: number;
  /** Never eject (see `MemcachedPoolOptions.endpointMode`): failures are counted and reported only. */
  readonly endpointMode?: boolean;
  readonly retryTimeout: number;
  readonly connectTimeout: number;
  readonly commandTimeout: number;
}

/**
 * twemproxy's auto-eject, made safe against members that flap or lie: `failureLimit` consecutive
 * failures that break the member take it off the ring; it is then probed with a real round trip
 * (stats, set and get of a probe key, through the same strict parser) on a fresh connection, and
 * re-admitted only when that works. Ejections soon after a readmission back off exponentially
 * (capped at `MAX_BACKOFF` × `retryTimeout`), except while no member serves: then every ejected
 * member is probed at least once a second, so the cache is never off longer than a member takes
 * to answer. A member that kept its data while writes went elsewhere is re-admitted all the same:
 * the keys this process overwrote meanwhile are cleared on it first (the pool's `StaleCopyGuard`).
 */
export class Ejection {
  constructor(
    private readonly options: EjectionOptions,
    private readonly host: EjectionHost,
  ) {}

  /** Count a failed command: report it; a breaking one counts towards ejection. */
  failed(state: MemberState, error: unknown): void {
    state.errors++;
    // Commands cut short by the pool itself (member removed, pool closed) are not failures.
    if (!this.host.isCurrent(state)) return;
    // A value refused before it was sent says nothing about the member.
    if (error instanceof MemcachedValueError) {
      this.host.report(error);
      return;
    }
    const failure =
      error instanceof MemcachedMemberError || error instanceof MemcachedReplyError
        ? error
        : new MemcachedMemberError(state.id, error);
    if (breaksMember(failure)) {
      // Failures still in flight when the member was ejected do not eject it again. An endpoint
      // in front of a fleet is never ejected: its keys have nowhere else to go.
      if (
        state.ejectedUntil === 0 &&
        ++state.failures >= this.options.failureLimit &&
        this.options.endpointMode !== true
      ) {
        this.eject(state, failure);
      }
      this.host.report(failure);
      this.host.memberFailed(state, failure);
      return;
    }
    this.host.report(failure);
  }

  /** No member serves: probe every ejected one of `states` within a second. */
  hurry(states: Iterable<MemberState>): void {
    const soon = Date.now() + EMPTY_RING_PROBE_INTERVAL;
    for (const state of states) {
      if (state.readmitTimer === undefined || state.ejectedUntil <= soon) continue;
      clearTimeout(state.readmitTimer);
      this.scheduleProbe(state, EMPTY_RING_PROBE_INTERVAL);
    }
  }

  private eject(state: MemberState, error: MemcachedError): void {
    const now = Date.now();
    const flapWindow = Math.max(FLAP_WINDOW, 2 * this.options.retryTimeout);
    state.ejectionStreak =
      state.readmittedAt !== 0 && now - state.readmittedAt < flapWindow
        ? state.ejectionStreak + 1
        : 1;
    state.ejectedAt = now;
    state.writesAtEjection = this.host.writes();
    state.ejections++;
    this.scheduleProbe(state, this.probeDelay(state));
    this.host.ringChanged();
    // A member ejected for its error replies is reported as a member failure caused by them.
    this.host.ejected(
      state,
      error instanceof MemcachedMemberError ? error : new MemcachedMemberError(state.id, error),
    );
  }

  /** `retryTimeout`, doubled per ejection in a row; at most a second while no member serves. */
  private probeDelay(state: MemberState): number {
    const factor = 2 ** Math.min(Math.max(state.ejectionStreak - 1, 0), Math.log2(MAX_BACKOFF));
    const backoff = this.options.retryTimeout * factor;
    return this.host.ringEmpty() ? Math.min(backoff, EMPTY_RING_PROBE_INTERVAL) : backoff;
  }

  /** Keep `state` out of the ring for `delay` ms, then probe it. */
  private scheduleProbe(state: MemberState, delay: number): void {
    state.ejectedUntil = Date.now() + delay;
    state.readmitTimer = setTimeout(() => void this.probe(state), delay);
    state.readmitTimer.unref();
  }

  /** Probe an ejected member on a fresh connection; no user request waits on this. */
  private async probe(state: MemberState): Promise<void> {
    state.readmitTimer = undefined;
    if (!this.host.isCurrent(state)) return;
    const connection = this.host.connect(state);
    state.probe = connection;
    let kept: boolean | typeof PROBE_TIMEOUT | undefined;
    try {
      const limit = this.options.connectTimeout + 2 * this.options.commandTimeout;
      kept = await withDeadline(this.keptData(state, connection), limit, () => PROBE_TIMEOUT);
    } catch {
      // Still broken: stays ejected; its failure was already reported when it was ejected.
    } finally {
      connection.close();
    }
    // Removed, replaced or closed meanwhile (dispose() closed the probe): nothing to do.
    if (state.probe !== connection || !this.host.isCurrent(state)) return;
    state.probe = undefined;
    if (typeof kept !== 'boolean') {
      this.scheduleProbe(state, this.probeDelay(state));
      return;
    }
    this.readmit(state, kept && this.host.writes() !== state.writesAtEjection);
  }

  /**
   * A real round trip (stats, then set and get of a probe key), and whether the member still holds
   * what it held when it left the ring (it stalled rather than restarted). Rejects when the member
   * does not answer as memcached does.
   */
  private async keptData(state: MemberState, connection: MemberLink): Promise<boolean> {
    const stats = await connection.stats();
    const uptime = Number(stats.find(([name]) => name === 'uptime')?.[1]);
    const token = randomBytes(9).toString('base64url');
    if ((await connection.store('set', PROBE_KEY, token, 60)) !== 'STORED') {
      throw new Error('the probe key was not stored');
    }
    if ((await connection.get(PROBE_KEY)) !== token) throw new Error('the probe key read wrong');
    // Leaves nothing behind (a member's item count stays what the store wrote).
    await connection.delete(PROBE_KEY);
    if (!Number.isFinite(uptime)) throw new Error('stats without uptime');
    const since = Date.now() - state.ejectedAt;
    // `uptime` counts whole seconds: only a start surely after the ejection is a restart.
    if ((uptime - MEMCACHED_UPTIME_AT_START + 1) * 1000 < since) return false;
    // Surely up since before the ejection, or no marker to settle the doubt: the safe side.
    const marker = this.host.restartMarker?.();
    if (marker === undefined || (uptime - MEMCACHED_UPTIME_AT_START - 1) * 1000 >= since) {
      return true;
    }
    return (await connection.get(marker)) !== undefined;
  }

  private readmit(state: MemberState, stale: boolean): void {
    state.ejectedUntil = 0;
    state.ejectedAt = 0;
    state.readmittedAt = Date.now();
    state.readmissions++;
    // On probation: one more breaking failure ejects it again; a success clears this.
    state.failures = Math.max(0, this.options.failureLimit - 1);
    this.host.ringChanged();
    this.host.readmitted(state, stale);
  }
}
