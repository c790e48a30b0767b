import type { Socket } from 'node:net';
import { MemcachedReplyError } from '../../errors/memcached.errors.js';
import type { MemcachedMemberError } from '../../errors/memcached.errors.js';
import type { LeaseReply } from './member-link.js';
import { META_PENDING, META_STALE, META_WIN } from './meta-flags.js';
import type { PendingReply, ReplyKind, ReplyParser } from './reply-parser.js';
import {
  META_PLACEHOLDER,
  REPLY_GET,
  REPLY_MG,
  REPLY_MG_BATCH,
  REPLY_MG_LEASE,
  REPLY_STATS,
} from './reply-parser.js';

/**
 * The parts of memcache-client 1.0.5 (pinned exactly) the connection relies on beyond its typed
 * API: the command dispatch of its server list, and per connection its socket, command queue
 * (FIFO, with the command timeout watching the oldest) and shutdown (fails every queued command).
 * `member-connection.spec.ts` fails if any of them changes.
 */
export interface ClientInternals {
  readonly _servers: {
    doCmd<T>(action: (connection: ConnectionInternals) => T | Promise<T>): Promise<T>;
  };
}
export interface ConnectionInternals {
  socket: Socket | undefined;
  queueCommand(command: QueuedCommand): void;
  dequeueCommand(): QueuedCommand | undefined;
  peekCommand(): QueuedCommand | undefined;
  isShutdown(): boolean;
  _shutdown(reason: string): void;
  /** Our parser, once the connection was seen. */
  [PARSER]?: ReplyParser;
}
/** What memcache-client keeps in its queue: it calls `callback(error)` on timeout and shutdown. */
export interface QueuedCommand {
  callback(error?: Error | null, status?: string): void;
}

export const PARSER = Symbol('nestjs-k8s reply parser');

/** What a command reports to its connection when it ends. */
export interface CommandOwner {
  readonly id: string;
  /** The error a failed command rejects with. */
  failure(error: Error): MemcachedMemberError;
  countKeyMismatches(count: number): void;
  countOversized(count: number): void;
  /** Plain reads took the recompute token of values marked stale: give it back. */
  releaseStale(keys: readonly string[]): void;
  /** Install the parser on a connection seen for the first time. */
  hook(connection: ConnectionInternals): void;
}

/** One command in a connection's queue: what the parser needs, and how to settle its promise. */
export class Command implements PendingReply, QueuedCommand {
  value: unknown = undefined;
  values: unknown[] | undefined = undefined;
  keyMismatches = 0;
  oversized = 0;
  stats: Array<[string, string]> | undefined = undefined;
  state = 0;
  cas = '';
  ttl = -2;
  staleWon: string[] | undefined = undefined;
  refusal: string | undefined = undefined;
  resolve!: (result: unknown) => void;
  reject!: (error: unknown) => void;

  constructor(
    readonly owner: CommandOwner,
    readonly kind: ReplyKind,
    readonly key: string,
    readonly keys: readonly string[] | undefined,
    /** The command's bytes. */
    readonly line: string,
    readonly data: Buffer | undefined,
  ) {}

  callback(error?: Error | null, status?: string): void {
    if (error) {
      this.reject(this.owner.failure(error));
      return;
    }
    if (this.keyMismatches > 0) this.owner.countKeyMismatches(this.keyMismatches);
    if (this.oversized > 0) this.owner.countOversized(this.oversized);
    if (this.staleWon !== undefined) this.owner.releaseStale(this.staleWon);
    switch (this.kind) {
      case REPLY_GET:
      case REPLY_MG:
      case REPLY_MG_BATCH:
        if (this.refusal !== undefined) {
          this.reject(new MemcachedReplyError(this.owner.id, this.refusal));
          return;
        }
        this.resolve(this.keys === undefined ? this.value : this.values);
        return;
      case REPLY_MG_LEASE:
        this.resolve(this.leaseReply());
        return;
      case REPLY_STATS:
        this.resolve(this.stats ?? []);
        return;
      default:
        this.resolve(status);
    }
  }

  private leaseReply(): LeaseReply {
    const state = this.state;
    return {
      value: this.value,
      win: (state & META_WIN) !== 0,
      stale: (state & META_STALE) !== 0,
      pending: (state & META_PENDING) !== 0,
      placeholder: (state & META_PLACEHOLDER) !== 0,
      cas: this.cas,
      ttl: this.ttl,
      leased: true,
    };
  }
}

/** Write `command` on `connection` and queue it for its reply. */
export function write(connection: ConnectionInternals, command: Command): void {
  const socket = connection.socket!;
  if (socket.writableCorked === 0) {
    // Corked until the next tick: the commands of one tick leave in one write system call.
    socket.cork();
    process.nextTick(uncork, socket);
  }
  socket.write(command.line);
  if (command.data !== undefined) {
    socket.write(command.data);
    socket.write('\r\n');
  }
  connection.queueCommand(command);
}

function uncork(socket: Socket): void {
  socket.uncork();
}
