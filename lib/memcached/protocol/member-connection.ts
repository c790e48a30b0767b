// The protocol layer (lib/memcached/protocol/): the wire to one member. It owns the connection
// (memcache-client under our strict reply parser, `reply-parser.ts`), the link the pool sees
// (`member-link.ts`) and memcached's own rules for keys (`key-encoding.ts`), flags
// (`key-check.ts`) and expiry times (`ttl.ts`); memcached's meta commands belong here too. It
// knows no ring, pool or store: it imports only what lies below it in CONTRIBUTING.md's map
// (discovery's `Member`, errors/, util/).

import type { Socket } from 'node:net';
import { MemcacheClient } from 'memcache-client';
import type { Member } from '../../discovery/member.js';
import { memberId } from '../../discovery/member.js';
import {
  MemcachedMemberError,
  MemcachedProtocolError,
  MemcachedReplyError,
  MemcachedTlsError,
  MemcachedValueEncodingError,
  MemcachedValueTooLargeError,
} from '../../errors/memcached.errors.js';
import type { MemcachedValueError } from '../../errors/memcached.errors.js';
import { TYPE_BINARY, TYPE_JSON, TYPE_NUMERIC, TYPE_STRING, flagsFor } from './key-check.js';
import type {
  MemberConnectionEvents,
  MemberConnectionOptions,
  MemberLink,
  StoreStatus,
} from './member-link.js';
import type { PendingReply, ReplyKind, ReplySink } from './reply-parser.js';
import {
  ProtocolViolation,
  REPLY_DELETE,
  REPLY_GET,
  REPLY_STATS,
  REPLY_STORE,
  ReplyParser,
} from './reply-parser.js';

/**
 * The parts of memcache-client 1.0.5 (pinned exactly) this file relies on beyond its typed API:
 * the command dispatch of its server list, and per connection its socket, command queue (FIFO,
 * with the command timeout watching the oldest) and shutdown (fails every queued command).
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

const PARSER = Symbol('nestjs-k8s reply parser');

export type {
  LinkFactory,
  MemberConnectionEvents,
  MemberConnectionOptions,
  MemberLink,
  StoreStatus,
} from './member-link.js';

/** One command in a connection's queue: what the parser needs, and how to settle its promise. */
class Command implements PendingReply, QueuedCommand {
  value: unknown = undefined;
  values: unknown[] | undefined = undefined;
  keyMismatches = 0;
  oversized = 0;
  stats: Array<[string, string]> | undefined = undefined;
  resolve!: (result: unknown) => void;
  reject!: (error: unknown) => void;

  constructor(
    readonly owner: MemberConnection,
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
    switch (this.kind) {
      case REPLY_GET:
        this.resolve(this.keys === undefined ? this.value : this.values);
        return;
      case REPLY_STATS:
        this.resolve(this.stats ?? []);
        return;
      default:
        this.resolve(status);
    }
  }
}

/** Sends `command` on `connection` (hooked on first sight) and queues it for its reply. */
function send(connection: ConnectionInternals, command: Command): void {
  const socket = connection.socket;
  if (connection[PARSER] === undefined) command.owner.hook(connection);
  if (socket === undefined || connection.isShutdown()) {
    command.reject(command.owner.failure(new Error('connection closed')));
    return;
  }
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

/**
 * The connection(s) to one member: memcache-client connects (TCP or TLS, connect timeout,
 * keep-alive, TCP_NODELAY), queues commands and times them out, and shuts down; the replies are
 * read by our strict `ReplyParser`, which replaces memcache-client's on each new connection before
 * any reply arrives. So no reply can throw outside a promise, print, allocate beyond the value
 * bound, or complete a command with another command's reply: any such reply is a protocol error
 * of this member (`MemcachedProtocolError`): the connection is closed and every command in flight
 * on it fails.
 *
 * This is the only file that imports memcache-client.
 */
export class MemberConnection implements MemberLink {
  readonly id: string;
  /** Replies that broke the protocol (each closed a connection). */
  protocolErrors = 0;
  /** Values read with another key's check (read as misses). */
  keyMismatches = 0;
  private client: MemcacheClient | undefined;
  private readonly internals: ClientInternals;

  constructor(
    readonly member: Member,
    private readonly options: MemberConnectionOptions,
    private readonly events?: MemberConnectionEvents,
  ) {
    this.id = memberId(member);
    const tls = options.tls && {
      ...options.tls,
      // Connecting to an address while the member is named by `host`: its certificate names host.
      ...(member.address !== undefined && { servername: options.tls.servername ?? member.host }),
    };
    this.client = new MemcacheClient({
      server: { server: serverAddress(member), maxConnections: options.maxConnections },
      connectTimeout: options.connectTimeout,
      cmdTimeout: options.commandTimeout,
      noDelay: options.noDelay,
      // memcache-client switches to tls.connect whenever the key is present, even if undefined.
      ...(tls && { tls }),
    });
    this.internals = this.client as unknown as ClientInternals;
  }

  /** The value of `key`; undefined on a miss. */
  get(key: string): Promise<unknown> {
    return this.run(new Command(this, REPLY_GET, key, undefined, `get ${key}\r\n`, undefined));
  }

  /** Values of `keys` (one command), aligned with them; undefined for misses. */
  getMany(keys: readonly string[]): Promise<unknown[]> {
    let line = 'get';
    for (let i = 0; i < keys.length; i++) line += ` ${keys[i]}`;
    const command = new Command(this, REPLY_GET, '', keys, `${line}\r\n`, undefined);
    command.values = new Array<unknown>(keys.length).fill(undefined);
    return this.run(command) as Promise<unknown[]>;
  }

  /**
   * `set` (or `add`) with the key check in the flags; resolves to memcached's status. A value
   * whose bytes exceed `maxValueSize`, or a string UTF-8 cannot carry unchanged, is refused
   * (`MemcachedValueError`) and, for `set`, the key's old value deleted, as memcached does
   * when it refuses an item.
   */
  store(verb: 'set' | 'add', key: string, value: unknown, exptime: number): Promise<StoreStatus> {
    let text: string | undefined;
    let type = TYPE_STRING;
    if (typeof value === 'string') text = value;
    else if (Buffer.isBuffer(value)) type = TYPE_BINARY;
    else if (typeof value === 'number') [type, text] = [TYPE_NUMERIC, JSON.stringify(value)];
    else [type, text] = [TYPE_JSON, JSON.stringify(value) ?? 'null'];
    const bytes = text === undefined ? (value as Buffer).length : Buffer.byteLength(text);
    if (bytes > this.options.maxValueSize) {
      return this.refuse(
        verb,
        key,
        new MemcachedValueTooLargeError(key, bytes, this.options.maxValueSize),
      );
    }
    // JSON and numbers are well-formed by construction; a raw string may hold a lone surrogate.
    if (type === TYPE_STRING && !isWellFormed(text!)) {
      return this.refuse(verb, key, new MemcachedValueEncodingError(key));
    }
    const flags = flagsFor(key, type);
    if (text !== undefined) {
      const line = `${verb} ${key} ${flags} ${exptime} ${bytes}\r\n${text}\r\n`;
      return this.run(
        new Command(this, REPLY_STORE, key, undefined, line, undefined),
      ) as Promise<StoreStatus>;
    }
    const data = value as Buffer;
    const line = `${verb} ${key} ${flags} ${exptime} ${data.length}\r\n`;
    return this.run(
      new Command(this, REPLY_STORE, key, undefined, line, data),
    ) as Promise<StoreStatus>;
  }

  /** A value refused before sending: for `set`, the old value goes first (memcached's rule). */
  private async refuse(
    verb: 'set' | 'add',
    key: string,
    error: MemcachedValueError,
  ): Promise<never> {
    if (verb === 'set') await this.delete(key).catch(() => undefined);
    throw error;
  }

  /** `delete`: true when the key existed. */
  async delete(key: string): Promise<boolean> {
    const command = new Command(this, REPLY_DELETE, key, undefined, `delete ${key}\r\n`, undefined);
    return (await this.run(command)) === 'DELETED';
  }

  /** memcached's `stats`, as `[name, value]` pairs. */
  stats(): Promise<Array<[string, string]>> {
    const command = new Command(this, REPLY_STATS, '', undefined, 'stats\r\n', undefined);
    return this.run(command) as Promise<Array<[string, string]>>;
  }

  /** Close every connection; commands in flight fail. */
  close(): void {
    this.client?.shutdown();
    this.client = undefined;
  }

  /** Install our parser as the only reader of `connection`'s socket (before any reply to us). */
  hook(connection: ConnectionInternals): void {
    const socket = connection.socket;
    const sink: ReplySink = {
      head: () => connection.peekCommand() as Command | undefined,
      complete: (status) => connection.dequeueCommand()?.callback(null, status),
      refuse: (line) => {
        const command = connection.dequeueCommand() as Command | undefined;
        command?.reject(new MemcachedReplyError(this.id, line));
      },
    };
    const parser = new ReplyParser(sink, this.options.maxValueSize);
    connection[PARSER] = parser;
    if (socket === undefined) return;
    socket.removeAllListeners('data');
    socket.on('data', (chunk: Buffer) => {
      try {
        parser.feed(chunk);
      } catch (error) {
        this.violated(connection, error);
      }
    });
  }

  /** The error a failed command rejects with. */
  failure(error: Error): MemcachedMemberError {
    if (error instanceof MemcachedMemberError) return error;
    return this.options.tls && isTlsFailure(error)
      ? new MemcachedTlsError(this.id, error)
      : new MemcachedMemberError(this.id, error);
  }

  countKeyMismatches(count: number): void {
    this.keyMismatches += count;
    this.events?.keyMismatch(count);
  }

  countOversized(count: number): void {
    this.events?.oversized(count);
  }

  private violated(connection: ConnectionInternals, error: unknown): void {
    this.protocolErrors++;
    this.events?.protocolError();
    const detail = error instanceof ProtocolViolation ? error.message : String(error);
    const failure = new MemcachedProtocolError(this.id, detail);
    while (!connection.isShutdown()) {
      const command = connection.dequeueCommand();
      if (command === undefined) break;
      command.callback(failure);
    }
    connection._shutdown(`protocol error: ${detail}`);
  }

  private run(command: Command): Promise<unknown> {
    const promise = new Promise<unknown>((resolve, reject) => {
      command.resolve = resolve;
      command.reject = reject;
    });
    if (this.client === undefined) {
      command.reject(new MemcachedMemberError(this.id, new Error('connection closed')));
      return promise;
    }
    try {
      // memcache-client hands back the action's result as is when a connection is ready (no
      // promise), a promise while it connects.
      const connecting = this.internals._servers.doCmd((connection) =>
        send(connection, command),
      ) as Promise<void> | undefined;
      connecting?.then(undefined, (error: unknown) => command.reject(this.failure(asError(error))));
    } catch (error) {
      command.reject(this.failure(asError(error)));
    }
    return promise;
  }
}

/** `String.prototype.isWellFormed` (ES2024, in every Node line this package supports). */
function isWellFormed(text: string): boolean {
  return (text as string & { isWellFormed(): boolean }).isWellFormed();
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * memcache-client splits its `server` string on `:`, which breaks IPv6 literals. For those, hand it
 * a string object whose `split` yields exactly host and port.
 */
function serverAddress(member: Member): string {
  const host = member.address ?? member.host;
  if (!host.includes(':')) return `${host}:${member.port}`;
  const address = Object.assign(new String(`[${host}]:${member.port}`), {
    split: (): string[] => [host, String(member.port)],
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
