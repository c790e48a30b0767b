import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { StatsCommandResponse } from 'memcache-client';
import { MemcacheClient } from 'memcache-client';
import type { MemberDiff, Member } from '../discovery/member.js';
import { diffMembers, memberId, normalizeMembers } from '../discovery/member.js';
import type { MemcachedError } from '../errors/memcached.errors.js';
import {
  MemcachedMemberError,
  MemcachedReplyError,
  MemcachedTlsError,
  MemcachedUnavailableError,
} from '../errors/memcached.errors.js';
import { HashRing } from './hash-ring.js';

/** Options of a `MemcachedPool`; the store fills them from the cache options and their defaults. */
export interface MemcachedPoolOptions {
  /** TCP connect timeout per member, in ms. */
  connectTimeout: number;
  /** Time one command may take before it counts as a failure, in ms. */
  commandTimeout: number;
  /** Connections per member. */
  maxConnections: number;
  /** TCP_NODELAY on member connections (see `K8sCacheOptions.noDelay`). @default true */
  noDelay?: boolean;
  /** `tls.connect` options for every member connection and probe; undefined: plaintext. */
  tls?: ConnectionOptions;
  /** Time every command into per-member latency buckets (`MemberStats.latency`). @default false */
  collectTimings?: boolean;
  /** Consecutive connection-class failures after which a member leaves the ring. */
  failureLimit: number;
  /**
   * How long an ejected member stays out of the ring, in ms; then it is probed and re-admitted
   * only if it answers, else it stays out for another `retryTimeout`.
   */
  retryTimeout: number;
  /**
   * How long the ring before a membership change is kept for warm-up, in ms; 0 (the default)
   * turns warm-up off. See `MemcachedPool`.
   */
  warmupPeriod?: number;
  /** Members holding each key: the owner and the next distinct members clockwise. @default 1 */
  replicas?: number;
  /**
   * The exptime to copy `value`, found away from its owner, to the owner with; undefined: do not
   * copy it (its remaining time to live is unknown). No copy at all without it.
   */
  copyExptime?(value: unknown, nowMs: number): number | undefined;
  /**
   * A key the pool's owner keeps on every member (the store's generation key). memcached's
   * `uptime` counts whole seconds, so a member restarted within about a second of its ejection
   * cannot be told from one that only stalled; the probe then reads this key: a restarted member
   * has lost it. Without it, such a member counts as one that kept its data.
   */
  restartMarker?(): string;
  /**
   * Every failed operation (the pool itself never rejects), except commands cut short by the
   * pool itself: those of a removed member or after `close()`.
   */
  onError(error: MemcachedError): void;
  /** A member failed at the connection level: the member list may be stale. */
  onConnectionError?(member: string, error: MemcachedMemberError): void;
}

/** Counters of one member (since it joined the pool). */
export interface MemberStats {
  /** `host:port`. */
  readonly member: string;
  /** Keys sent to this member (a multi-get of n keys counts n). */
  readonly ops: number;
  readonly hits: number;
  readonly misses: number;
  /** Operations that failed (connection-class or an error reply). */
  readonly errors: number;
  /** Consecutive connection-class failures. */
  readonly failures: number;
  /** Epoch ms of the member's next health probe while it is out of the ring; undefined while in. */
  readonly ejectedUntil: number | undefined;
  /** Times it left the ring after `failureLimit` consecutive failures. */
  readonly ejections: number;
  /** Times it went back on the ring after a probe answered. */
  readonly readmissions: number;
  /** Values copied to this member, their new owner, from where they were found (warm-up). */
  readonly warmupCopies: number;
  /** Reads this member answered as a replica after the owner missed or failed. */
  readonly replicaReads: number;
  /** Command round-trip times; only with `collectTimings`. */
  readonly latency?: LatencyStats;
}

/**
 * Upper bounds of the latency buckets, in ms: Prometheus' default buckets (5 ms to 10 s) extended
 * down to 0.5 ms, since a memcached round trip inside a cluster takes well under 5 ms.
 */
const LATENCY_BUCKETS_MS: readonly number[] = [
  0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
];

/** Round-trip times of the commands sent to one member (failed ones included). */
export interface LatencyStats {
  /** Commands timed. */
  readonly count: number;
  /** Their total time, in ms. */
  readonly sumMs: number;
  /** Commands that took at most `leMs` ms (cumulative), bounds ascending; `count` is the +Inf one. */
  readonly buckets: readonly { readonly leMs: number; readonly count: number }[];
}

/** Counters of the pool. */
export interface PoolStats {
  readonly members: MemberStats[];
  /** Members currently on the ring (not ejected), sorted. */
  readonly ring: string[];
  readonly totals: {
    ops: number;
    hits: number;
    misses: number;
    errors: number;
    ejections: number;
    readmissions: number;
  };
}

/** One entry of `setMany`. */
export interface PoolEntry {
  readonly key: string;
  readonly value: unknown;
  /** Memcached exptime (see `toExptime`). */
  readonly exptime: number;
}

type StoreValue = string | number | Buffer | Record<string, unknown>;
type Retrieved = { value: unknown } | undefined;

/**
 * The `uptime` a memcached process reports right after it starts, in seconds (its clock starts
 * 2 s in the past; some old versions start it 62 s back, which errs on the safe side: a restarted
 * member then reads as one that kept its data, and the store starts a new generation).
 */
const MEMCACHED_UPTIME_AT_START = 2;

const EMPTY_RING = new HashRing<Member>([]);

/** Keys per multi-get command: keeps command lines short whatever the caller passes. */
const MULTI_GET_CHUNK = 100;

class MemberState {
  readonly id: string;
  client: MemcacheClient | undefined;
  failures = 0;
  ejectedUntil = 0;
  readmitTimer: NodeJS.Timeout | undefined;
  /** Epoch ms of the ejection (0 while in the ring). */
  ejectedAt = 0;
  /** Client of the health probe in flight, if any. */
  probe: MemcacheClient | undefined;
  ops = 0;
  hits = 0;
  misses = 0;
  errors = 0;
  ejections = 0;
  readmissions = 0;
  warmupCopies = 0;
  replicaReads = 0;
  /** Commands per latency bucket (not cumulative; the last one is over every bound). */
  latencyCounts: number[] | undefined;
  latencySumMs = 0;

  constructor(readonly member: Member) {
    this.id = memberId(member);
  }

  /** Count one command sent at `started` (a `performance.now()`). */
  timeSince(started: number): void {
    const ms = performance.now() - started;
    this.latencyCounts ??= new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
    let bucket = 0;
    while (bucket < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[bucket]) bucket++;
    this.latencyCounts[bucket]++;
    this.latencySumMs += ms;
  }

  latency(): LatencyStats {
    const counts = this.latencyCounts ?? [];
    const buckets: Array<{ leMs: number; count: number }> = [];
    let count = 0;
    for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) {
      count += counts[i] ?? 0;
      buckets.push({ leMs: LATENCY_BUCKETS_MS[i], count });
    }
    return {
      count: count + (counts[LATENCY_BUCKETS_MS.length] ?? 0),
      sumMs: this.latencySumMs,
      buckets,
    };
  }
}

/**
 * memcache-client splits its `server` string on `:`, which breaks IPv6 literals. For those, hand it
 * a string object whose `split` yields exactly host and port.
 */
function serverAddress(member: Member): string {
  const id = memberId(member);
  if (!member.host.includes(':')) return id;
  const address = Object.assign(new String(id), {
    split: (): string[] => [member.host, String(member.port)],
  });
  return address as unknown as string;
}

/**
 * memcache-client turns a socket error into `socket error <message>`, dropping Node's error code:
 * a failed handshake is told apart by Node's and OpenSSL's messages (an untrusted or mismatched
 * certificate, or a member that does not speak TLS).
 */
function isTlsFailure(error: unknown): boolean {
  return (
    error instanceof Error &&
    /certificate|altnames|self[- ]signed|SSL routines|EPROTO|TLS/i.test(error.message)
  );
}

/**
 * Writes `data` to a member socket corked until the next tick, so the commands issued in one tick
 * (the callers one read of replies woke, say) leave in one write system call rather than one each:
 * at high concurrency that call is the largest CPU cost of a command. memcache-client hands the
 * socket to a function passed to `xsend` for exactly this kind of use.
 */
function writeBatched(socket: Socket | undefined, data: string): void {
  if (socket === undefined) return;
  if (socket.writableCorked === 0) {
    socket.cork();
    process.nextTick(uncork, socket);
  }
  socket.write(data);
}

function uncork(socket: Socket): void {
  socket.uncork();
}

/** `get` of one key or of space-separated keys, written batched; resolves to the hits by key. */
function retrieve(client: MemcacheClient, keys: string): Promise<Record<string, Retrieved>> {
  return client.xsend((socket) => writeBatched(socket, `get ${keys}\r\n`)) as Promise<
    Record<string, Retrieved>
  >;
}

/** Memcached's own error replies carry the reply tokens; connection-level errors do not. */
function isReply(error: unknown): error is Error & { cmdTokens: string[] } {
  return error instanceof Error && Array.isArray((error as { cmdTokens?: unknown }).cmdTokens);
}

/**
 * One `memcache-client` per member (it does not shard), keys routed by a ketama ring. Members that
 * keep failing at the connection level are ejected from the ring for `retryTimeout` ms
 * (twemproxy's auto-eject), so their keys go to the next member meanwhile. An ejected member is
 * probed (`stats` on a fresh connection) before it goes back on the ring, so a member that is
 * still down never costs live requests a timeout.
 *
 * Operations never reject: a failure is reported to `onError`
 * and reads as a miss / `false`.
 *
 * Warm-up (`warmupPeriod` > 0): after the set of members on the ring changes, the ring before is
 * kept for `warmupPeriod` ms. A read that misses (or fails) at a key's owner then asks the key's
 * previous owner, if that one differs and is still on the ring, and copies a value found there to
 * the owner with `add` (never overwriting a value written meanwhile) and the exptime
 * `copyExptime` allows. Meanwhile writes and deletes also delete the key at its previous owner,
 * so no later miss brings an older value back from there.
 *
 * Replicas (`replicas` > 1): each key also lives on the next distinct members clockwise. Writes
 * and deletes reach every copy; a read asks the owner, then the next copies on a miss or failure
 * (a multi-get: one more round per member). Losing the owner makes the next copy the owner.
 *
 * Events: `eject` (memberId, error), `readmit` (memberId, keptData: the member did not restart
 * while out, so it may hold entries that changed elsewhere meanwhile).
 */
export class MemcachedPool extends EventEmitter {
  private readonly states = new Map<string, MemberState>();
  private ring = new HashRing<Member>([]);
  /** `ringStates[i]` owns `ring.members[i]`. */
  private ringStates: MemberState[] = [];
  private closed = false;
  /** When recently removed members left (bounded), to tell a returning member's data is stale. */
  private readonly removedAt = new Map<string, number>();
  private readonly replicas: number;
  private readonly warmupPeriod: number;
  /** The ring before the latest membership change, kept for warm-up until `previousUntil`. */
  private previousRing = EMPTY_RING;
  /** `previousStates[i]` owned `previousRing.members[i]`. */
  private previousStates: MemberState[] = [];
  /** Epoch ms until which `previousRing` serves warm-up; 0 when there is none. */
  private previousUntil = 0;
  /** `collectTimings`: read on every command, so kept in a field of its own. */
  private readonly timed: boolean;

  constructor(private readonly options: MemcachedPoolOptions) {
    super();
    this.timed = options.collectTimings ?? false;
    this.replicas = options.replicas ?? 1;
    this.warmupPeriod = options.warmupPeriod ?? 0;
  }

  /** Current members (ejected ones included), sorted. */
  members(): Member[] {
    return [...this.states.values()].map((s) => s.member);
  }

  /**
   * Apply a new member list as a diff: clients of surviving members stay (with their ejection
   * state), removed members' clients are shut down, added members connect on first use.
   */
  setMembers(members: Iterable<Member>): MemberDiff {
    if (this.closed) return { added: [], removed: [] };
    const next = normalizeMembers(members);
    const diff = diffMembers(this.members(), next);
    const now = Date.now();
    for (const member of diff.removed) {
      const state = this.states.get(memberId(member));
      if (state) this.dispose(state);
      // Re-inserted so the map stays in removal order (oldest first) for forgetOldRemovals.
      this.removedAt.delete(memberId(member));
      this.removedAt.set(memberId(member), now);
    }
    this.forgetOldRemovals(now);
    const states = new Map<string, MemberState>();
    for (const member of next) {
      const id = memberId(member);
      let state = this.states.get(id);
      if (state === undefined) {
        state = new MemberState(member);
        const removedAt = this.removedAt.get(id);
        if (removedAt !== undefined) {
          // Back in DNS (a pod that was not ready, say): it may have kept entries that changed
          // elsewhere meanwhile. Probe it before it serves, as a re-admitted member.
          this.removedAt.delete(id);
          state.ejectedAt = removedAt;
          this.scheduleProbe(state, 0);
        }
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
    const state = this.routed(key);
    if (state === undefined) return undefined;
    state.ops++;
    const started = this.timed ? performance.now() : 0;
    try {
      const found = (await retrieve(this.clientOf(state), key))[key];
      state.failures = 0;
      if (found === undefined) {
        state.misses++;
        // Only a miss pays for the check; `previousUntil` is 0 unless the ring changed lately.
        return this.replicas > 1 || this.previousUntil !== 0
          ? this.getElsewhere(key, state, true)
          : undefined;
      }
      state.hits++;
      return found.value;
    } catch (error) {
      this.failed(state, error);
      return this.replicas > 1 || this.previousUntil !== 0
        ? this.getElsewhere(key, state, false)
        : undefined;
    } finally {
      if (started !== 0) state.timeSince(started);
    }
  }

  /** Values of `keys` in input order (undefined for misses and for members that failed). */
  async getMany(keys: readonly string[]): Promise<unknown[]> {
    // Filled, not sparse: Keyv walks the result with for..in, which skips holes.
    const values = new Array<unknown>(keys.length).fill(undefined);
    if (keys.length === 0) return values;
    const ring = this.ring;
    const states = this.ringStates;
    if (ring.size === 0) {
      this.options.onError(this.unavailable());
      return values;
    }
    const groups = new Array<number[] | undefined>(ring.size);
    for (let i = 0; i < keys.length; i++) {
      const owner = ring.indexOf(keys[i]);
      (groups[owner] ??= []).push(i);
    }
    const pending: Promise<void>[] = [];
    for (let m = 0; m < groups.length; m++) {
      const indexes = groups[m];
      if (indexes === undefined) continue;
      for (let start = 0; start < indexes.length; start += MULTI_GET_CHUNK) {
        const chunk = indexes.slice(start, start + MULTI_GET_CHUNK);
        pending.push(this.getBatch(states[m], keys, chunk, values));
      }
    }
    await Promise.all(pending);
    if (this.replicas > 1 || this.previousUntil !== 0) {
      await this.getManyElsewhere(keys, values, ring, states);
    }
    return values;
  }

  /**
   * After a miss or failure at `owner`: `key` from its replicas, then (warm-up) from its owner
   * before the latest ring change. A value found there is copied to `owner` when it answered.
   */
  private async getElsewhere(
    key: string,
    owner: MemberState,
    ownerAnswered: boolean,
  ): Promise<unknown> {
    const asked = [owner];
    if (this.replicas > 1) {
      for (const state of this.ownersOf(key)) {
        if (asked.includes(state) || !this.onRing(state)) continue;
        asked.push(state);
        const found = await this.getFrom(state, key);
        if (found !== undefined) {
          state.replicaReads++;
          if (ownerAnswered && this.warmingUp()) this.copyTo(owner, key, found.value);
          return found.value;
        }
      }
    }
    const previous = this.previousOwner(key);
    if (previous === undefined || asked.includes(previous)) return undefined;
    const found = await this.getFrom(previous, key);
    if (found === undefined) return undefined;
    if (ownerAnswered) this.copyTo(owner, key, found.value);
    return found.value;
  }

  /**
   * `getElsewhere` for the keys of a multi-get still missing: one more round per replica, then
   * one to the previous owners, each one batch per member.
   */
  private async getManyElsewhere(
    keys: readonly string[],
    values: unknown[],
    ring: HashRing<Member>,
    states: readonly MemberState[],
  ): Promise<void> {
    let missing: number[] = [];
    for (let i = 0; i < values.length; i++) if (values[i] === undefined) missing.push(i);
    if (missing.length === 0) return;
    const owners = missing.map((i) => ring.owners(keys[i], this.replicas).map((m) => states[m]));
    for (let r = 1; r < this.replicas; r++) {
      const found = await this.round(
        keys,
        values,
        missing,
        owners.map((list) => list[r]),
      );
      missing = this.afterRound(keys, values, missing, owners, found, true);
    }
    if (missing.length === 0 || !this.warmingUp()) return;
    const previous = missing.map((i, j) => {
      const state = this.previousOwner(keys[i]);
      return state !== undefined && !owners[j].includes(state) ? state : undefined;
    });
    const found = await this.round(keys, values, missing, previous);
    this.afterRound(keys, values, missing, owners, found, false);
  }

  /**
   * Ask `targets[j]` for `keys[missing[j]]`, one batch per member and chunk; targets that are
   * undefined or no longer on the ring are skipped. Resolves to the targets asked.
   */
  private async round(
    keys: readonly string[],
    values: unknown[],
    missing: readonly number[],
    targets: ReadonlyArray<MemberState | undefined>,
  ): Promise<ReadonlyArray<MemberState | undefined>> {
    const groups = new Map<MemberState, number[]>();
    const asked = targets.map((state, j) => {
      if (state === undefined || !this.onRing(state)) return undefined;
      let group = groups.get(state);
      if (group === undefined) groups.set(state, (group = []));
      group.push(missing[j]);
      return state;
    });
    const pending: Promise<void>[] = [];
    for (const [state, indexes] of groups) {
      for (let start = 0; start < indexes.length; start += MULTI_GET_CHUNK) {
        pending.push(
          this.getBatch(state, keys, indexes.slice(start, start + MULTI_GET_CHUNK), values),
        );
      }
    }
    await Promise.all(pending);
    return asked;
  }

  /** Count and copy what a fallback round found; the indexes still missing (owners kept in step). */
  private afterRound(
    keys: readonly string[],
    values: unknown[],
    missing: number[],
    owners: MemberState[][],
    asked: ReadonlyArray<MemberState | undefined>,
    replicaRound: boolean,
  ): number[] {
    const still: number[] = [];
    const stillOwners: MemberState[][] = [];
    const copy = this.warmingUp();
    for (let j = 0; j < missing.length; j++) {
      const i = missing[j];
      const from = asked[j];
      if (values[i] === undefined || from === undefined) {
        still.push(i);
        stillOwners.push(owners[j]);
        continue;
      }
      if (replicaRound) from.replicaReads++;
      if (copy && this.onRing(owners[j][0])) this.copyTo(owners[j][0], keys[i], values[i]);
    }
    owners.splice(0, owners.length, ...stillOwners);
    return still;
  }

  /** One key from one member (counted like any read); undefined on a miss or failure. */
  private async getFrom(state: MemberState, key: string): Promise<Retrieved> {
    state.ops++;
    const started = this.timed ? performance.now() : 0;
    try {
      const found = (await retrieve(this.clientOf(state), key))[key];
      state.failures = 0;
      if (found === undefined) state.misses++;
      else state.hits++;
      return found;
    } catch (error) {
      this.failed(state, error);
      return undefined;
    } finally {
      if (started !== 0) state.timeSince(started);
    }
  }

  /**
   * Copy a value found away from its owner to the owner with `add`, which never overwrites a value
   * written there meanwhile. In the background: the caller has its value already.
   */
  private copyTo(owner: MemberState, key: string, value: unknown): void {
    if (typeof value !== 'string') return;
    const exptime = this.options.copyExptime?.(value, Date.now());
    if (exptime === undefined) return;
    void this.addOn(owner, key, value, exptime);
  }

  private async addOn(
    state: MemberState,
    key: string,
    value: string,
    exptime: number,
  ): Promise<void> {
    if (!this.onRing(state)) return;
    state.ops++;
    const started = this.timed ? performance.now() : 0;
    try {
      const command = `add ${key} 0 ${exptime} ${Buffer.byteLength(value)}\r\n${value}\r\n`;
      const reply = await this.clientOf(state).xsend((socket) => writeBatched(socket, command), {
        ignoreNotStored: true,
      });
      state.failures = 0;
      if (reply !== 'ignore NOT_STORED') state.warmupCopies++;
    } catch (error) {
      this.failed(state, error);
    } finally {
      if (started !== 0) state.timeSince(started);
    }
  }

  /** Store `value` under `key`; false when it was not stored (failure reported). */
  set(key: string, value: unknown, exptime: number): Promise<boolean> {
    if (this.replicas > 1 || this.previousUntil !== 0) return this.setSpread(key, value, exptime);
    const state = this.routed(key);
    if (state === undefined) return Promise.resolve(false);
    return this.setOn(state, key, value, exptime);
  }

  private async setOn(
    state: MemberState,
    key: string,
    value: unknown,
    exptime: number,
  ): Promise<boolean> {
    state.ops++;
    const started = this.timed ? performance.now() : 0;
    try {
      const client = this.clientOf(state);
      if (typeof value === 'string') {
        // What memcache-client's set writes for a string (flags 0), in one batched write.
        const command = `set ${key} 0 ${exptime} ${Buffer.byteLength(value)}\r\n${value}\r\n`;
        await client.xsend((socket) => writeBatched(socket, command));
      } else {
        await client.set(key, value as StoreValue, { lifetime: exptime, ignoreNotStored: false });
      }
      state.failures = 0;
      return true;
    } catch (error) {
      this.failed(state, error);
      return false;
    } finally {
      if (started !== 0) state.timeSince(started);
    }
  }

  /**
   * `key` as each member on the ring holds it (in parallel), for the few keys kept on every
   * member rather than on one. `failed` members did not answer (the failure is reported).
   */
  getOnEach(key: string): Promise<Array<{ member: string; value: unknown; failed: boolean }>> {
    return Promise.all(
      this.ringStates.map(async (state) => {
        state.ops++;
        const started = this.timed ? performance.now() : 0;
        try {
          const found: Retrieved = await this.clientOf(state).get(key);
          state.failures = 0;
          return { member: state.id, value: found?.value, failed: false };
        } catch (error) {
          this.failed(state, error);
          return { member: state.id, value: undefined, failed: true };
        } finally {
          if (started !== 0) state.timeSince(started);
        }
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
      ? this.ringStates.filter((state) => members.includes(state.id))
      : this.ringStates;
    return Promise.all(targets.map((state) => this.setOn(state, key, value, exptime)));
  }

  /** Store each entry (in parallel, routed per key); one boolean per entry, in order. */
  setMany(entries: readonly PoolEntry[]): Promise<boolean[]> {
    return Promise.all(entries.map((e) => this.set(e.key, e.value, e.exptime)));
  }

  /**
   * `set` with replicas or during warm-up: every owner in parallel, true when at least one stored
   * it (a read falls back to that one); the previous owner's copy is deleted meanwhile.
   */
  private async setSpread(key: string, value: unknown, exptime: number): Promise<boolean> {
    const owners = this.ownersOf(key);
    if (owners.length === 0) {
      this.options.onError(this.unavailable());
      return false;
    }
    void this.clearPrevious(key, owners);
    const stored = await Promise.all(owners.map((s) => this.setOn(s, key, value, exptime)));
    return stored.includes(true);
  }

  /** Delete `key`: true when it existed, false when it did not or the delete failed. */
  delete(key: string): Promise<boolean> {
    if (this.replicas > 1 || this.previousUntil !== 0) return this.deleteSpread(key);
    const state = this.routed(key);
    if (state === undefined) return Promise.resolve(false);
    return this.deleteOn(state, key);
  }

  /**
   * `delete` from every owner and, during warm-up, the previous owner (in parallel); true when one
   * of them had it.
   */
  private async deleteSpread(key: string): Promise<boolean> {
    const owners = this.ownersOf(key);
    if (owners.length === 0) {
      this.options.onError(this.unavailable());
      return false;
    }
    const deleted = await Promise.all([
      ...owners.map((s) => this.deleteOn(s, key)),
      this.clearPrevious(key, owners),
    ]);
    return deleted.includes(true);
  }

  /**
   * During warm-up, a write or delete also deletes the key at its previous owner (when that is
   * not one of its owners now), so a later miss cannot bring an older value back from there.
   * Never rejects; false when there was nothing to delete there (or the delete failed).
   */
  private clearPrevious(key: string, owners: readonly MemberState[]): Promise<boolean> {
    const previous = this.previousOwner(key);
    return previous !== undefined && !owners.includes(previous)
      ? this.deleteOn(previous, key)
      : Promise.resolve(false);
  }

  private async deleteOn(state: MemberState, key: string): Promise<boolean> {
    state.ops++;
    const started = this.timed ? performance.now() : 0;
    try {
      await this.clientOf(state).delete(key);
      state.failures = 0;
      return true;
    } catch (error) {
      if (isReply(error) && error.message === 'NOT_FOUND') {
        state.failures = 0;
        return false;
      }
      this.failed(state, error);
      return false;
    } finally {
      if (started !== 0) state.timeSince(started);
    }
  }

  /** Delete each key (in parallel); one boolean per key, in order. */
  deleteMany(keys: readonly string[]): Promise<boolean[]> {
    return Promise.all(keys.map((key) => this.delete(key)));
  }

  /** Counters per member and in total. */
  stats(): PoolStats {
    const members: MemberStats[] = [];
    const totals = { ops: 0, hits: 0, misses: 0, errors: 0, ejections: 0, readmissions: 0 };
    for (const s of this.states.values()) {
      members.push({
        member: s.id,
        ops: s.ops,
        hits: s.hits,
        misses: s.misses,
        errors: s.errors,
        failures: s.failures,
        ejectedUntil: s.ejectedUntil === 0 ? undefined : s.ejectedUntil,
        ejections: s.ejections,
        readmissions: s.readmissions,
        warmupCopies: s.warmupCopies,
        replicaReads: s.replicaReads,
        ...(this.timed && { latency: s.latency() }),
      });
      totals.ops += s.ops;
      totals.hits += s.hits;
      totals.misses += s.misses;
      totals.errors += s.errors;
      totals.ejections += s.ejections;
      totals.readmissions += s.readmissions;
    }
    return { members, ring: this.ringStates.map((s) => s.id), totals };
  }

  /** Shut every client down and clear every timer; later operations read as misses. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const state of this.states.values()) this.dispose(state);
    this.states.clear();
    this.rebuildRing();
  }

  /** The members holding `key` on the current ring, owner first (empty for an empty ring). */
  private ownersOf(key: string): MemberState[] {
    if (this.replicas === 1) {
      const state = this.route(key);
      return state === undefined ? [] : [state];
    }
    const states = this.ringStates;
    return this.ring.owners(key, this.replicas).map((m) => states[m]);
  }

  /** In the pool and on the ring now: neither ejected nor removed (nor the pool closed). */
  private onRing(state: MemberState): boolean {
    return !this.closed && state.ejectedUntil === 0 && this.states.get(state.id) === state;
  }

  /** True while the ring before the latest change is kept; drops it once the period is over. */
  private warmingUp(): boolean {
    if (this.previousUntil === 0) return false;
    if (Date.now() < this.previousUntil) return true;
    this.previousUntil = 0;
    this.previousRing = EMPTY_RING;
    this.previousStates = [];
    return false;
  }

  /**
   * The owner of `key` before the latest ring change, while warm-up lasts and only if it is
   * still on the ring: a member known dead, ejected or removed is never asked.
   */
  private previousOwner(key: string): MemberState | undefined {
    if (!this.warmingUp()) return undefined;
    const state = this.previousStates[this.previousRing.indexOf(key)];
    return state !== undefined && this.onRing(state) ? state : undefined;
  }

  private route(key: string): MemberState | undefined {
    const index = this.ring.indexOf(key);
    return index < 0 ? undefined : this.ringStates[index];
  }

  /** The member owning `key`; when none can take it, that is reported and undefined returned. */
  private routed(key: string): MemberState | undefined {
    const state = this.route(key);
    if (state === undefined) this.options.onError(this.unavailable());
    return state;
  }

  /** The member's client, connecting on first use. */
  private clientOf(state: MemberState): MemcacheClient {
    return (state.client ??= this.newClient(state.member, this.options.maxConnections));
  }

  private newClient(member: Member, maxConnections: number): MemcacheClient {
    return new MemcacheClient({
      server: { server: serverAddress(member), maxConnections },
      connectTimeout: this.options.connectTimeout,
      cmdTimeout: this.options.commandTimeout,
      noDelay: this.options.noDelay ?? true,
      // memcache-client switches to tls.connect whenever the key is present, even if undefined.
      ...(this.options.tls && { tls: this.options.tls }),
    });
  }

  private async getBatch(
    state: MemberState,
    keys: readonly string[],
    indexes: number[],
    values: unknown[],
  ): Promise<void> {
    state.ops += indexes.length;
    let batch = keys[indexes[0]];
    for (let j = 1; j < indexes.length; j++) batch += ` ${keys[indexes[j]]}`;
    const started = this.timed ? performance.now() : 0;
    try {
      const found = await retrieve(this.clientOf(state), batch);
      state.failures = 0;
      for (const i of indexes) {
        const entry = found[keys[i]];
        if (entry === undefined) {
          state.misses++;
        } else {
          state.hits++;
          values[i] = entry.value;
        }
      }
    } catch (error) {
      this.failed(state, error);
    } finally {
      if (started !== 0) state.timeSince(started);
    }
  }

  /**
   * Report a failure; connection-class ones count towards ejection and ask for a refresh.
   * Commands the pool cut short itself (member removed, or `close()`: `shutdown()` rejects what is
   * in flight) are normal on every scale-down and shutdown, so they are not reported.
   */
  private failed(state: MemberState, error: unknown): void {
    state.errors++;
    if (this.closed || this.states.get(state.id) !== state) return;
    if (isReply(error)) {
      this.options.onError(new MemcachedReplyError(state.id, error.message));
      return;
    }
    const failure =
      this.options.tls && isTlsFailure(error)
        ? new MemcachedTlsError(state.id, error)
        : new MemcachedMemberError(state.id, error);
    // Failures still in flight when the member was ejected do not eject it again.
    if (state.ejectedUntil === 0 && ++state.failures >= this.options.failureLimit) {
      this.eject(state, failure);
    }
    this.options.onError(failure);
    this.options.onConnectionError?.(state.id, failure);
  }

  private eject(state: MemberState, error: MemcachedMemberError): void {
    state.ejectedAt = Date.now();
    state.ejections++;
    this.scheduleProbe(state);
    this.rebuildRing();
    this.emit('eject', state.id, error);
  }

  /** Keep `state` out of the ring for `retryTimeout`, then probe it. */
  private scheduleProbe(state: MemberState, retry = this.options.retryTimeout): void {
    state.ejectedUntil = Date.now() + retry;
    state.readmitTimer = setTimeout(() => void this.probe(state), retry);
    state.readmitTimer.unref();
  }

  /**
   * Ask an ejected member for its stats on a fresh connection (bounded by the connect and
   * command timeouts); re-admit it only if it answers. No user request waits on this.
   */
  private async probe(state: MemberState): Promise<void> {
    state.readmitTimer = undefined;
    if (this.closed || this.states.get(state.id) !== state) return;
    const client = this.newClient(state.member, 1);
    state.probe = client;
    let guard: NodeJS.Timeout | undefined;
    let healthy = false;
    let kept = false;
    try {
      // memcache-client bounds connect and command separately; this also bounds the sum.
      const limit = this.options.connectTimeout + this.options.commandTimeout;
      kept = await Promise.race([
        this.keptData(state, client),
        new Promise<never>((_, reject) => {
          guard = setTimeout(() => reject(new Error('probe timeout')), limit);
          guard.unref();
        }),
      ]);
      healthy = true;
    } catch {
      // Still down: stays ejected; its failure was already reported when it was ejected.
    } finally {
      clearTimeout(guard);
      client.shutdown();
    }
    // Removed, replaced or closed meanwhile (dispose() shut the probe down): nothing to do.
    if (state.probe !== client || this.closed || this.states.get(state.id) !== state) return;
    state.probe = undefined;
    if (healthy) this.readmit(state, kept);
    else this.scheduleProbe(state);
  }

  /**
   * Whether a member that answers its probe still holds what it held when it left the ring (it
   * stalled rather than restarted): such entries may have been overwritten or deleted on other
   * members meanwhile. Rejects when the member does not answer.
   */
  private async keptData(state: MemberState, client: MemcacheClient): Promise<boolean> {
    const stats = await client.cmd<StatsCommandResponse>('stats');
    const uptime = Number(stats.STAT?.find(([name]) => name === 'uptime')?.[1]);
    const since = Date.now() - state.ejectedAt;
    // `uptime` counts whole seconds: only a start surely after the ejection is a restart.
    if ((uptime - MEMCACHED_UPTIME_AT_START + 1) * 1000 < since) return false;
    // Surely up since before the ejection, or no marker to settle the doubt: the safe side.
    const marker = this.options.restartMarker?.();
    if (marker === undefined || (uptime - MEMCACHED_UPTIME_AT_START - 1) * 1000 >= since) {
      return true;
    }
    return (await retrieve(client, marker))[marker] !== undefined;
  }

  private readmit(state: MemberState, keptData: boolean): void {
    state.ejectedUntil = 0;
    state.readmissions++;
    // On probation: one more connection-class failure ejects it again; a success clears this.
    state.failures = Math.max(0, this.options.failureLimit - 1);
    this.rebuildRing();
    this.emit('readmit', state.id, keptData);
  }

  private dispose(state: MemberState): void {
    if (state.readmitTimer) clearTimeout(state.readmitTimer);
    state.readmitTimer = undefined;
    state.probe?.shutdown();
    state.probe = undefined;
    state.client?.shutdown();
    state.client = undefined;
  }

  /** Members gone for longer than an hour, or beyond the 1,000 most recent, are forgotten. */
  private forgetOldRemovals(now: number): void {
    for (const [id, at] of this.removedAt) {
      if (now - at <= 3_600_000 && this.removedAt.size <= 1_000) break;
      this.removedAt.delete(id);
    }
  }

  private rebuildRing(): void {
    const live: MemberState[] = [];
    for (const state of this.states.values()) if (state.ejectedUntil === 0) live.push(state);
    const before = this.ringStates;
    const beforeRing = this.ring;
    this.ringStates = live;
    this.ring = new HashRing(live.map((s) => s.member));
    if (this.warmupPeriod === 0 || this.closed) return;
    const changed = before.length !== live.length || before.some((s, i) => s !== live[i]);
    if (!changed || before.length === 0) return;
    // One previous ring. A change that only takes members off the ring (ejection, DNS removal)
    // while one is kept keeps it: for every other key it still names where the value is, and
    // members off the ring are never asked. Any other change (a member added or re-admitted)
    // replaces it with the ring just before that change, with a new deadline.
    if (this.warmingUp() && live.every((s) => before.includes(s))) return;
    this.previousRing = beforeRing;
    this.previousStates = before;
    this.previousUntil = Date.now() + this.warmupPeriod;
  }

  private unavailable(): MemcachedUnavailableError {
    if (this.closed) return new MemcachedUnavailableError('the store was disconnected');
    return new MemcachedUnavailableError(
      this.states.size === 0
        ? 'the member list is empty'
        : `all ${this.states.size} members are ejected after repeated failures`,
    );
  }
}
