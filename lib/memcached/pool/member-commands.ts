import { MemcachedReplyError } from '../../errors/memcached.errors.js';
import type { CommandObserver, CommandReason, MemberOperation } from './command-observer.js';
import type {
  LinkFactory,
  MemberConnectionOptions,
  MemberLink,
} from '../protocol/member-connection.js';
import { MemberConnection } from '../protocol/member-connection.js';

/** The link a pool makes to each member unless told otherwise: memcached over TCP or TLS. */
export const connectMember: LinkFactory = (member, options, events) =>
  new MemberConnection(member, options, events);
import type { MemberState } from './member-state.js';

/** What a command that failed resolves to (the failure was handed to `onFailure`). */
export const FAILED = Symbol('failed');
export type Failed = typeof FAILED;

/** Where the outcomes of member commands go. */
export interface CommandSink {
  /** A command failed (connection, protocol or error reply). */
  failed(state: MemberState, error: unknown): void;
  /** A member returned values stored under another key (they read as misses). */
  keyMismatch(state: MemberState, count: number): void;
  /** A member returned values over `maxValueSize`, skipped unread (they read as misses). */
  oversized(state: MemberState, count: number): void;
  /** A command did not do its work without failing (`NOT_STORED` of a set). */
  refused(error: MemcachedReplyError): void;
}

/**
 * Runs the pool's commands on members: one place counts the operation, times it, tells the
 * observer, clears the member's failure count on an answer and hands failures to the sink. No
 * command rejects: a failure resolves to `FAILED`, a read's miss or failure to undefined.
 */
export class MemberCommands {
  constructor(
    private readonly connectionOptions: MemberConnectionOptions,
    private readonly timed: boolean,
    private readonly observer: CommandObserver | undefined,
    private readonly sink: CommandSink,
    private readonly createLink: LinkFactory = connectMember,
  ) {}

  /** The member's connection, created on first use. */
  connectionOf(state: MemberState): MemberLink {
    return (state.connection ??= this.connect(state));
  }

  /** A connection of its own (the health probe's). */
  connect(state: MemberState, maxConnections?: number): MemberLink {
    const options =
      maxConnections === undefined
        ? this.connectionOptions
        : { ...this.connectionOptions, maxConnections };
    return this.createLink(state.member, options, {
      keyMismatch: (count) => this.sink.keyMismatch(state, count),
      oversized: (count) => this.sink.oversized(state, count),
      protocolError: () => state.protocolErrors++,
    });
  }

  /** `key` from `state`, counted as a hit or miss; undefined on a miss, `FAILED` on a failure. */
  async get(state: MemberState, key: string, reason: CommandReason): Promise<unknown> {
    const found = await this.attempt(
      state,
      'get',
      1,
      reason,
      this.connectionOf(state).get(key),
      key,
    );
    if (found === FAILED) return FAILED;
    if (found === undefined) state.misses++;
    else state.hits++;
    return found;
  }

  /** `get` of `keys[i]` for each i of `indexes` (one command), filling `values`. */
  async getBatch(
    state: MemberState,
    keys: readonly string[],
    indexes: readonly number[],
    values: unknown[],
    reason: CommandReason,
  ): Promise<void> {
    const batch = new Array<string>(indexes.length);
    for (let j = 0; j < indexes.length; j++) batch[j] = keys[indexes[j]];
    const command = this.connectionOf(state).getMany(batch);
    const found = await this.attempt(state, 'get_multi', indexes.length, reason, command, batch);
    if (found === FAILED) return;
    for (let j = 0; j < indexes.length; j++) {
      const value = found[j];
      if (value === undefined) {
        state.misses++;
      } else {
        state.hits++;
        values[indexes[j]] = value;
      }
    }
  }

  /** `set`: true when stored (a `NOT_STORED` is reported as refused). */
  async set(
    state: MemberState,
    key: string,
    value: unknown,
    exptime: number,
    reason: CommandReason,
  ): Promise<boolean> {
    const command = this.connectionOf(state).store('set', key, value, exptime);
    const status = await this.attempt(state, 'set', 1, reason, command, key);
    if (status === FAILED) return false;
    if (status === 'STORED') return true;
    this.sink.refused(new MemcachedReplyError(state.id, status));
    return false;
  }

  /** `add` (never overwrites): true when stored, false when the key existed or it failed. */
  async add(
    state: MemberState,
    key: string,
    value: string,
    exptime: number,
    reason: CommandReason,
  ): Promise<boolean> {
    const command = this.connectionOf(state).store('add', key, value, exptime);
    return (await this.attempt(state, 'add', 1, reason, command, key)) === 'STORED';
  }

  /** `delete`: true when the key existed. */
  async delete(state: MemberState, key: string, reason: CommandReason): Promise<boolean> {
    return (await this.remove(state, key, reason)) === true;
  }

  /** `delete`: true when the key existed, `FAILED` when the command failed. */
  remove(state: MemberState, key: string, reason: CommandReason): Promise<boolean | Failed> {
    const command = this.connectionOf(state).delete(key);
    return this.attempt(state, 'delete', 1, reason, command, key);
  }

  private async attempt<T>(
    state: MemberState,
    operation: MemberOperation,
    size: number,
    reason: CommandReason,
    command: Promise<T>,
    keys: string | readonly string[],
  ): Promise<T | Failed> {
    state.ops += size;
    const started = this.timed ? performance.now() : 0;
    const end = this.observer?.start(operation, state.member, size, reason, keys);
    try {
      const result = await command;
      state.failures = 0;
      end?.(operation === 'get' || operation === 'get_multi' ? { hits: hitsOf(result) } : {});
      return result;
    } catch (error) {
      this.sink.failed(state, error);
      end?.({ error });
      return FAILED;
    } finally {
      if (started !== 0) state.latency.record(started);
    }
  }
}

function hitsOf(result: unknown): number {
  if (!Array.isArray(result)) return result === undefined ? 0 : 1;
  let hits = 0;
  for (const value of result) if (value !== undefined) hits++;
  return hits;
}
