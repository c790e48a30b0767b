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
  /** Consecutive connection-class failures after which a member leaves the ring. */
  failureLimit: number;
  /**
   * How long an ejected member stays out of the ring, in ms; then it is probed and re-admitted
   * only if it answers, else it stays out for another `retryTimeout`.
   */
  retryTimeout: number;
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
}

/** Counters of the pool. */
export interface PoolStats {
  readonly members: MemberStats[];
  /** Members currently on the ring (not ejected), sorted. */
  readonly ring: string[];
  readonly totals: { ops: number; hits: number; misses: number; errors: number };
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

  constructor(readonly member: Member) {
    this.id = memberId(member);
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

  constructor(private readonly options: MemcachedPoolOptions) {
    super();
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
    try {
      const found = (await retrieve(this.clientOf(state), key))[key];
      state.failures = 0;
      if (found === undefined) {
        state.misses++;
        return undefined;
      }
      state.hits++;
      return found.value;
    } catch (error) {
      this.failed(state, error);
      return undefined;
    }
  }

  /** Values of `keys` in input order (undefined for misses and for members that failed). */
  async getMany(keys: readonly string[]): Promise<unknown[]> {
    // Filled, not sparse: Keyv walks the result with for..in, which skips holes.
    const values = new Array<unknown>(keys.length).fill(undefined);
    if (keys.length === 0) return values;
    const ring = this.ring;
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
        pending.push(this.getBatch(this.ringStates[m], keys, chunk, values));
      }
    }
    await Promise.all(pending);
    return values;
  }

  /** Store `value` under `key`; false when it was not stored (failure reported). */
  set(key: string, value: unknown, exptime: number): Promise<boolean> {
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
        try {
          const found: Retrieved = await this.clientOf(state).get(key);
          state.failures = 0;
          return { member: state.id, value: found?.value, failed: false };
        } catch (error) {
          this.failed(state, error);
          return { member: state.id, value: undefined, failed: true };
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

  /** Delete `key`: true when it existed, false when it did not or the delete failed. */
  async delete(key: string): Promise<boolean> {
    const state = this.routed(key);
    if (state === undefined) return false;
    state.ops++;
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
    }
  }

  /** Delete each key (in parallel); one boolean per key, in order. */
  deleteMany(keys: readonly string[]): Promise<boolean[]> {
    return Promise.all(keys.map((key) => this.delete(key)));
  }

  /** Counters per member and in total. */
  stats(): PoolStats {
    const members: MemberStats[] = [];
    const totals = { ops: 0, hits: 0, misses: 0, errors: 0 };
    for (const s of this.states.values()) {
      members.push({
        member: s.id,
        ops: s.ops,
        hits: s.hits,
        misses: s.misses,
        errors: s.errors,
        failures: s.failures,
        ejectedUntil: s.ejectedUntil === 0 ? undefined : s.ejectedUntil,
      });
      totals.ops += s.ops;
      totals.hits += s.hits;
      totals.misses += s.misses;
      totals.errors += s.errors;
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
      const stats = await Promise.race([
        client.cmd<StatsCommandResponse>('stats'),
        new Promise<never>((_, reject) => {
          guard = setTimeout(() => reject(new Error('probe timeout')), limit);
          guard.unref();
        }),
      ]);
      healthy = true;
      const uptime = Number(stats.STAT?.find(([name]) => name === 'uptime')?.[1]);
      // Up since before it left the ring: it kept entries that were overwritten or deleted on
      // other members meanwhile. `uptime` counts whole seconds, so only a start surely after the
      // ejection counts as a restart; when in doubt, the data counts as kept (the safe side).
      const startedAtMost = (uptime - MEMCACHED_UPTIME_AT_START + 1) * 1000;
      kept = !(startedAtMost < Date.now() - state.ejectedAt);
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

  private readmit(state: MemberState, keptData: boolean): void {
    state.ejectedUntil = 0;
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
    this.ringStates = live;
    this.ring = new HashRing(live.map((s) => s.member));
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
