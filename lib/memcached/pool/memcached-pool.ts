// The pool layer (lib/memcached/pool/): the members and what is sent to them. It owns one
// `MemberState` per member (connection, counters, latency), one helper per command
// (`member-commands.ts`), ejection and probes (`ejection.ts`), reads beyond a key's owner
// (replicas, warm-up: `fallback-reads.ts`) and `CommandObserver`, the port telemetry implements.
// It may import ring/, protocol/ and what lies below them (discovery/, errors/, util/); what it
// needs from above (the store's policies, an observer) comes in through `MemcachedPoolOptions`.

import { EventEmitter } from 'node:events';
import type { MemberDiff, Member } from '../../discovery/member.js';
import { diffMembers, memberId, normalizeMembers } from '../../discovery/member.js';
import type { MemcachedReplyError } from '../../errors/memcached.errors.js';
import {
  MemcachedKeyMismatchError,
  MemcachedOversizedValueError,
  MemcachedUnavailableError,
} from '../../errors/memcached.errors.js';
import { Ejection } from './ejection.js';
import { FallbackReads, MULTI_GET_CHUNK } from './fallback-reads.js';
import { FAILED, MemberCommands, connectMember } from './member-commands.js';
import type { MemberStats } from './member-state.js';
import { MemberState } from './member-state.js';
import { RingView } from '../ring/ring-view.js';
import type { LeaseReply } from '../protocol/member-connection.js';
import { reconnectWithBackoff } from './reconnect-backoff.js';
import { StaleCopyGuard } from './stale-copy-guard.js';

import type { MemcachedPoolOptions, PoolEntry, PoolEvents, PoolStats } from './pool-options.js';

export type { LatencyStats } from './latency-histogram.js';
export type { LeaseReply } from '../protocol/member-connection.js';
export type { MemberStats } from './member-state.js';
export type {
  MemcachedPoolOptions,
  PoolEntry,
  PoolEvents,
  PoolPolicy,
  PoolStats,
} from './pool-options.js';

/** A lease read answered by a replica or the previous owner: a plain hit. */
const FOUND_ELSEWHERE = (value: unknown): LeaseReply => ({
  value,
  win: false,
  pending: false,
  stale: false,
  placeholder: false,
  cas: '',
  ttl: -1,
  leased: true,
});

/** `maxValueSize` of a pool built without one (memcached's default item size). */
const DEFAULT_MAX_VALUE = 1_048_576;
/** `trackedKeys` of a pool built without one. */
const DEFAULT_TRACKED_KEYS = 100_000;

/**
 * One connection set per member (memcache-client does not shard), keys routed by a ketama ring.
 * Members that keep failing are ejected for a while (see `Ejection`). Operations never reject: a
 * failure is emitted as `failure` and reads as a miss / `false`.
 *
 * Warm-up (`warmupPeriod` > 0): after the set of members on the ring changes, a read that misses
 * (or fails) at a key's owner asks the key's previous owner too (see `FallbackReads`); writes and
 * deletes meanwhile also delete the key there, so no later miss brings an older value back.
 *
 * Replicas (`replicas` > 1): each key also lives on the next distinct members clockwise. Writes
 * and deletes reach every copy; a read asks the owner, then the next copies.
 */
export class MemcachedPool extends EventEmitter<PoolEvents> {
  private readonly states = new Map<string, MemberState>();
  private closed = false;
  private readonly view: RingView<MemberState>;
  private readonly guard: StaleCopyGuard<MemberState>;
  private readonly commands: MemberCommands;
  private readonly fallback: FallbackReads;
  private readonly ejection: Ejection;
  private writeCount = 0;

  constructor(private readonly options: MemcachedPoolOptions) {
    super();
    const serving = (state: MemberState): boolean => this.serving(state);
    const policy = options.policy ?? {};
    this.view = new RingView(options.replicas ?? 1, options.warmupPeriod ?? 0, serving);
    this.commands = new MemberCommands(
      {
        connectTimeout: options.connectTimeout,
        commandTimeout: options.commandTimeout,
        maxConnections: options.maxConnections,
        noDelay: options.noDelay ?? true,
        tls: options.tls,
        maxValueSize: options.maxValueSize ?? DEFAULT_MAX_VALUE,
        protocol: options.protocol ?? 'auto',
        metaMultiGet: options.metaMultiGet ?? false,
      },
      options.collectTimings ?? false,
      options.commandObserver,
      {
        failed: (state, error) => this.ejection.failed(state, error),
        keyMismatch: (state, count) => {
          state.keyMismatches += count;
          this.emit('failure', new MemcachedKeyMismatchError(state.id, count));
        },
        oversized: (state, count) => {
          state.oversizedValues += count;
          this.emit(
            'failure',
            new MemcachedOversizedValueError(
              state.id,
              count,
              options.maxValueSize ?? DEFAULT_MAX_VALUE,
            ),
          );
        },
        refused: (error: MemcachedReplyError) => this.emit('failure', error),
      },
      // An endpoint is never ejected, so nothing else spaces out its reconnects.
      options.endpointMode
        ? reconnectWithBackoff(options.createLink ?? connectMember)
        : options.createLink,
    );
    this.fallback = new FallbackReads(this.view, this.commands, serving, policy.copyExptime);
    this.ejection = new Ejection(options, {
      isCurrent: (state) => !this.closed && this.states.get(state.id) === state,
      ringChanged: () => this.rebuildRing(),
      ringEmpty: () => this.view.states.length === 0,
      writes: () => this.writeCount,
      connect: (state) => this.commands.connect(state, 1),
      report: (error) => this.emit('failure', error),
      memberFailed: (state, error) => this.emit('memberFailure', state.id, error),
      ejected: (state, error) => this.emit('eject', state.id, error),
      readmitted: (state, stale) => this.emit('readmit', state.id, stale),
      restartMarker: policy.restartMarker?.bind(policy),
    });
    this.guard = new StaleCopyGuard(options.trackedKeys ?? DEFAULT_TRACKED_KEYS, {
      ownersOfHash: (hash) => this.view.ownersOfHash(hash),
      serving,
      remove: (state, key) => this.commands.remove(state, key, 'invalidate'),
      untracked: (reason) => {
        this.emit('untracked', reason);
        policy.untracked?.(reason);
      },
    });
  }

  /** Current members (ejected ones included), sorted. */
  members(): Member[] {
    return [...this.states.values()].map((s) => s.member);
  }

  /**
   * Apply a new member list as a diff: connections of surviving members stay (with their ejection
   * state) unless their address changed, removed members' are closed, added members connect on
   * first use and serve at once. A member back after a removal may hold copies older than writes
   * made elsewhere meanwhile: the ones this process made are cleared there first (`StaleCopyGuard`).
   */
  setMembers(members: Iterable<Member>): MemberDiff {
    if (this.closed) return { added: [], removed: [] };
    const next = normalizeMembers(members);
    const diff = diffMembers(this.members(), next);
    for (const member of diff.removed) this.states.get(memberId(member))?.dispose();
    const states = new Map<string, MemberState>();
    for (const member of next) {
      const id = memberId(member);
      let state = this.states.get(id);
      if (state === undefined) {
        state = new MemberState(member);
      } else if (state.member.address !== member.address) {
        // Same identity (ring position, stats), new place to connect.
        state.connection?.close();
        state.connection = undefined;
        state.member = member;
      }
      states.set(id, state);
    }
    this.states.clear();
    for (const [id, state] of states) this.states.set(id, state);
    this.rebuildRing();
    return diff;
  }

  /** The value of `key`, or undefined (miss or failure). */
  async get(key: string): Promise<unknown> {
    const wait = this.guard.waitFor(key);
    if (wait !== undefined) return wait.then(() => this.get(key));
    const state = this.ownerOf(key);
    if (state === undefined) return undefined;
    const found = await this.commands.get(state, key, 'owner');
    if (found === FAILED)
      return this.view.spread() ? this.fallback.get(key, state, false) : undefined;
    // Only a miss pays for the fallback check; `spread()` is false unless replicas or warm-up.
    if (found !== undefined || !this.view.spread()) return found;
    return this.fallback.get(key, state, true);
  }

  /** Values of `keys` in input order (undefined for misses and for members that failed). */
  async getMany(keys: readonly string[]): Promise<unknown[]> {
    // Filled, not sparse: Keyv walks the result with for..in, which skips holes.
    const values = new Array<unknown>(keys.length).fill(undefined);
    if (keys.length === 0) return values;
    const waits = this.guard.waitForAny(keys);
    if (waits.length > 0) await Promise.all(waits);
    const { ring, states } = this.view;
    if (ring.size === 0) {
      this.reportUnavailable();
      return values;
    }
    const groups = new Array<number[] | undefined>(ring.size);
    for (let i = 0; i < keys.length; i++) (groups[ring.indexOf(keys[i])] ??= []).push(i);
    const pending: Promise<void>[] = [];
    for (let m = 0; m < groups.length; m++) {
      const indexes = groups[m];
      if (indexes === undefined) continue;
      for (let start = 0; start < indexes.length; start += MULTI_GET_CHUNK) {
        const chunk =
          start === 0 && indexes.length <= MULTI_GET_CHUNK
            ? indexes
            : indexes.slice(start, start + MULTI_GET_CHUNK);
        pending.push(this.commands.getBatch(states[m], keys, chunk, values, 'owner'));
      }
    }
    await Promise.all(pending);
    if (this.view.spread()) await this.fallback.getMany(keys, values, ring, states);
    return values;
  }

  /** Store `value` under `key`; false when it was not stored (failure reported). */
  set(key: string, value: unknown, exptime: number): Promise<boolean> {
    const wait = this.guard.waitFor(key);
    if (wait !== undefined) return wait.then(() => this.set(key, value, exptime));
    this.writeCount++;
    if (this.view.spread()) return this.setSpread(key, value, exptime);
    const state = this.ownerOf(key);
    if (state === undefined) return Promise.resolve(false);
    this.guard.written(key, state, this.view.ring.lastHash);
    return this.commands.set(state, key, value, exptime, 'owner');
  }

  /** Store each entry (in parallel, routed per key); one boolean per entry, in order. */
  setMany(entries: readonly PoolEntry[]): Promise<boolean[]> {
    return Promise.all(entries.map((e) => this.set(e.key, e.value, e.exptime)));
  }

  /** Delete `key`: true when it existed, false when it did not or the delete failed. */
  delete(key: string): Promise<boolean> {
    const wait = this.guard.waitFor(key);
    if (wait !== undefined) return wait.then(() => this.delete(key));
    this.writeCount++;
    if (this.view.spread()) return this.deleteSpread(key);
    const state = this.ownerOf(key);
    if (state === undefined) return Promise.resolve(false);
    this.guard.written(key, state, this.view.ring.lastHash);
    return this.commands.delete(state, key, 'owner');
  }

  /** Delete each key (in parallel); one boolean per key, in order. */
  deleteMany(keys: readonly string[]): Promise<boolean[]> {
    return Promise.all(keys.map((key) => this.delete(key)));
  }

  /**
   * `key` as each member on the ring holds it (in parallel), for the few keys kept on every
   * member rather than on one. `failed` members did not answer (the failure is reported).
   */
  getOnEach(key: string): Promise<Array<{ member: string; value: unknown; failed: boolean }>> {
    if (this.view.states.length === 0) this.reportUnavailable();
    return Promise.all(
      this.view.states.map(async (state) => {
        const value = await this.commands.get(state, key, 'broadcast');
        return value === FAILED
          ? { member: state.id, value: undefined, failed: true }
          : { member: state.id, value, failed: false };
      }),
    );
  }

  /** Store `key` on every member on the ring, or on those of `members`; false where it failed. */
  setOnEach(
    key: string,
    value: unknown,
    exptime: number,
    members?: readonly string[],
  ): Promise<boolean[]> {
    const targets = members
      ? this.view.states.filter((state) => members.includes(state.id))
      : this.view.states;
    return Promise.all(
      targets.map((state) => this.commands.set(state, key, value, exptime, 'broadcast')),
    );
  }

  /**
   * Read `key` for `wrap`, with a lease of `leaseSeconds` on a miss and a recache win under
   * `recacheSeconds` to live (see `LeaseReply`). A member without the meta protocol reads plainly
   * (`leased: false`). On a miss the replicas and the previous owner are asked as by `get`; a
   * value found there is a plain hit (and, when this caller won the lease, fills the owner).
   * Undefined when no member could answer.
   */
  async lease(
    key: string,
    leaseSeconds: number,
    recacheSeconds: number,
  ): Promise<LeaseReply | undefined> {
    const wait = this.guard.waitFor(key);
    if (wait !== undefined) await wait;
    const state = this.ownerOf(key);
    if (state === undefined) return undefined;
    const reply = await this.commands.lease(state, key, leaseSeconds, recacheSeconds, 'owner');
    const failed = reply === FAILED;
    if (!this.view.spread() || (!failed && (reply.value !== undefined || reply.pending))) {
      return failed ? undefined : reply;
    }
    const found = await this.fallback.get(key, state, false);
    if (found === undefined) return failed ? undefined : reply;
    if (!failed && reply.win) {
      const exptime = this.options.policy?.copyExptime?.(found, Date.now());
      if (exptime !== undefined) void this.fill(key, found, exptime, reply.cas);
    }
    return FOUND_ELSEWHERE(found);
  }

  /**
   * Store `value` under `key` only if its owner's CAS is still `cas` (the lease or recache win it
   * was computed under); replicas get it plainly once the owner took it. False when the owner did
   * not store it (another write or a delete came first, or the lease lapsed) or failed.
   */
  async fill(key: string, value: unknown, exptime: number, cas: string): Promise<boolean> {
    const wait = this.guard.waitFor(key);
    if (wait !== undefined) await wait;
    this.writeCount++;
    const owners = this.view.spread() ? this.view.owners(key) : [];
    const owner = this.view.spread() ? owners[0] : this.ownerOf(key);
    if (owner === undefined) {
      if (this.view.spread()) this.reportUnavailable();
      return false;
    }
    if (owners.length > 0) this.guard.written(key, owners, NaN);
    else this.guard.written(key, owner, this.view.ring.lastHash);
    if (owners.length > 0) void this.deletePrevious(key, owners);
    const stored = await this.commands.fill(owner, key, value, exptime, cas, 'owner');
    if (stored && owners.length > 1) {
      await Promise.all(
        owners.slice(1).map((s) => this.commands.set(s, key, value, exptime, 'replica')),
      );
    }
    return stored;
  }

  /** Give a lease back (see `MemberLink.release`): true when the placeholder went. */
  release(key: string, cas: string): Promise<boolean> {
    const state = this.view.owner(key);
    if (state === undefined) return Promise.resolve(false);
    this.guard.written(key, state, this.view.ring.lastHash);
    return this.commands.release(state, key, cas, 'owner');
  }

  /**
   * Mark `key` stale for `seconds` on every copy instead of deleting it (a plain delete on members
   * without the meta protocol); true when one of them had it.
   */
  async markStale(key: string, seconds: number): Promise<boolean> {
    const wait = this.guard.waitFor(key);
    if (wait !== undefined) await wait;
    this.writeCount++;
    if (!this.view.spread()) {
      const state = this.ownerOf(key);
      if (state === undefined) return false;
      this.guard.written(key, state, this.view.ring.lastHash);
      return this.commands.markStale(state, key, seconds, 'owner');
    }
    const owners = this.view.owners(key);
    if (owners.length === 0) {
      this.reportUnavailable();
      return false;
    }
    this.guard.written(key, owners, NaN);
    const marked = await Promise.all([
      ...owners.map((s, i) =>
        this.commands.markStale(s, key, seconds, i === 0 ? 'owner' : 'replica'),
      ),
      this.deletePrevious(key, owners),
    ]);
    return marked.includes(true);
  }

  /**
   * Forget which keys this process wrote where (every key was just made unreachable: the store
   * started a new namespace generation).
   */
  forgetWrites(): void {
    this.guard.reset();
  }

  /** Counters per member and in total. */
  stats(): PoolStats {
    const members: MemberStats[] = [];
    const totals = { ops: 0, hits: 0, misses: 0, errors: 0, ejections: 0, readmissions: 0 };
    const timed = this.options.collectTimings ?? false;
    for (const state of this.states.values()) {
      const s = state.stats(timed);
      members.push(s);
      totals.ops += s.ops;
      totals.hits += s.hits;
      totals.misses += s.misses;
      totals.errors += s.errors;
      totals.ejections += s.ejections;
      totals.readmissions += s.readmissions;
    }
    return {
      members,
      ring: this.view.states.map((s) => s.id),
      totals,
      trackedKeys: this.guard.tracked,
      invalidations: this.guard.invalidations,
    };
  }

  /** Close every connection and clear every timer; later operations read as silent misses. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const state of this.states.values()) state.dispose();
    this.states.clear();
    this.rebuildRing();
  }

  /** `set` to every owner (true when one stored it); the previous owner's copy is deleted. */
  private async setSpread(key: string, value: unknown, exptime: number): Promise<boolean> {
    const owners = this.view.owners(key);
    if (owners.length === 0) {
      this.reportUnavailable();
      return false;
    }
    this.guard.written(key, owners, NaN);
    void this.deletePrevious(key, owners);
    const stored = await Promise.all(
      owners.map((s, i) =>
        this.commands.set(s, key, value, exptime, i === 0 ? 'owner' : 'replica'),
      ),
    );
    return stored.includes(true);
  }

  /** `delete` from every owner and the previous owner; true when one of them had it. */
  private async deleteSpread(key: string): Promise<boolean> {
    const owners = this.view.owners(key);
    if (owners.length === 0) {
      this.reportUnavailable();
      return false;
    }
    this.guard.written(key, owners, NaN);
    const deleted = await Promise.all([
      ...owners.map((s, i) => this.commands.delete(s, key, i === 0 ? 'owner' : 'replica')),
      this.deletePrevious(key, owners),
    ]);
    return deleted.includes(true);
  }

  /**
   * During warm-up, a write or delete also deletes the key at its previous owner (when that is
   * not one of its owners now), so a later miss cannot bring an older value back from there.
   */
  private deletePrevious(key: string, owners: readonly MemberState[]): Promise<boolean> {
    const previous = this.view.previousOwner(key);
    return previous !== undefined && !owners.includes(previous)
      ? this.commands.delete(previous, key, 'warmup')
      : Promise.resolve(false);
  }

  /** In the pool and on the ring now: neither ejected nor removed (nor the pool closed). */
  private serving(state: MemberState): boolean {
    return !this.closed && state.ejectedUntil === 0 && this.states.get(state.id) === state;
  }

  /** The member owning `key`; when none can take it, that is reported and undefined returned. */
  private ownerOf(key: string): MemberState | undefined {
    const state = this.view.owner(key);
    if (state === undefined) this.reportUnavailable();
    return state;
  }

  private rebuildRing(): void {
    const before = this.view.states;
    const live: MemberState[] = [];
    for (const state of this.states.values()) if (state.ejectedUntil === 0) live.push(state);
    this.view.update(live, !this.closed);
    if (this.closed || sameMembers(before, live)) return;
    this.guard.ringChanged();
    // With no member on the ring the cache is off: ejected members are probed again soon.
    if (live.length === 0) this.ejection.hurry(this.states.values());
  }

  /** No member can take the operation; silent once the pool is closed (a normal shutdown). */
  private reportUnavailable(): void {
    if (this.closed) return;
    this.emit(
      'failure',
      new MemcachedUnavailableError(
        this.states.size === 0
          ? 'the member list is empty'
          : `all ${this.states.size} members are ejected after repeated failures`,
      ),
    );
  }
}

function sameMembers(a: readonly MemberState[], b: readonly MemberState[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
