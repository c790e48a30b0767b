// The protocol layer (lib/memcached/protocol/): the wire to one member. It owns the connection
// (memcache-client under our strict reply parser, `reply-parser.ts`), the link the pool sees
// (`member-link.ts`) and memcached's own rules for keys (`key-encoding.ts`), flags
// (`key-check.ts`) and expiry times (`ttl.ts`); memcached's meta commands belong here too. It
// knows no ring, pool or store: it imports only what lies below it in CONTRIBUTING.md's map
// (discovery's `Member`, errors/, util/).

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
import { unleased } from './member-link.js';
import type {
  LeaseReply,
  MemberConnectionEvents,
  MemberConnectionOptions,
  MemberLink,
  StoreStatus,
} from './member-link.js';
import type { ReplySink } from './reply-parser.js';
import {
  ProtocolViolation,
  REPLY_DELETE,
  REPLY_GET,
  REPLY_MD,
  REPLY_MG,
  REPLY_MG_BATCH,
  REPLY_MG_LEASE,
  REPLY_MS,
  REPLY_NOOP,
  REPLY_STATS,
  REPLY_STORE,
  REPLY_VERSION,
  ReplyParser,
} from './reply-parser.js';
import type { ClientInternals, CommandOwner, ConnectionInternals } from './wire-command.js';
import { Command, PARSER, write } from './wire-command.js';

export type { ClientInternals, ConnectionInternals, QueuedCommand } from './wire-command.js';
export type {
  LeaseReply,
  LinkFactory,
  MemberConnectionEvents,
  MemberConnectionOptions,
  MemberLink,
  StoreStatus,
} from './member-link.js';

/** What a member speaks: not known yet, text commands only, or the meta protocol too. */
const UNKNOWN = 0;
const TEXT = 1;
const META = 2;

/** The first memcached release whose meta protocol is stable (`doc/protocol.txt`). */
const META_SINCE = [1, 6, 10];

/** Sends `command` on `connection` (hooked on first sight). */
function send(connection: ConnectionInternals, command: Command): void {
  if (connection[PARSER] === undefined) command.owner.hook(connection);
  if (connection.socket === undefined || connection.isShutdown()) {
    command.reject(command.owner.failure(new Error('connection closed')));
    return;
  }
  write(connection, command);
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
 * The protocol is learned per member: every new connection first sends `version` and `mn`; a
 * member of 1.6.10 or later that answers `MN` gets meta commands (`mg`, `ms`, `md`), any other
 * text commands. Commands wait for the first answer (one round trip, once). A member that answers
 * a meta command with `ERROR` later (it claimed what it cannot do) gets text commands for good:
 * the refused read or delete is sent again as text; a refused `ms` breaks the stream (the member
 * reads the value as commands), so it is a protocol error.
 *
 * This is the only file that imports memcache-client.
 */
export class MemberConnection implements MemberLink, CommandOwner {
  readonly id: string;
  /** Replies that broke the protocol (each closed a connection). */
  protocolErrors = 0;
  /** Values read with another key's check (read as misses). */
  keyMismatches = 0;
  private client: MemcacheClient | undefined;
  private readonly internals: ClientInternals;
  /** `UNKNOWN`, `TEXT` or `META`. */
  private mode: number;
  /** The member answered a meta command with ERROR: text commands for good. */
  private metaRefused = false;
  /** The first connection's `version` and `mn`, which every command waits for until answered. */
  private learning: Promise<void> | undefined;
  private learned: { resolve(): void; reject(error: unknown): void } | undefined;

  constructor(
    readonly member: Member,
    private readonly options: MemberConnectionOptions,
    private readonly events?: MemberConnectionEvents,
  ) {
    this.id = memberId(member);
    this.mode = options.protocol === 'text' ? TEXT : UNKNOWN;
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

  get protocol(): 'meta' | 'text' | undefined {
    return this.mode === META ? 'meta' : this.mode === TEXT ? 'text' : undefined;
  }

  /** The value of `key`; undefined on a miss (a value marked stale is one). */
  get(key: string): Promise<unknown> {
    const mode = this.mode;
    if (mode === META) {
      return this.run(new Command(this, REPLY_MG, key, undefined, `mg ${key} f v\r\n`, undefined));
    }
    if (mode === TEXT) {
      return this.run(new Command(this, REPLY_GET, key, undefined, `get ${key}\r\n`, undefined));
    }
    return this.afterLearning(() => this.get(key));
  }

  /**
   * Values of `keys` (one text `get`, or a quiet `mg` pipeline: `metaMultiGet`), aligned with
   * them; undefined for misses.
   */
  getMany(keys: readonly string[]): Promise<unknown[]> {
    const mode = this.mode;
    if (mode === UNKNOWN) return this.afterLearning(() => this.getMany(keys));
    let line: string;
    let kind: typeof REPLY_GET | typeof REPLY_MG_BATCH;
    if (mode === META && this.options.metaMultiGet === true) {
      kind = REPLY_MG_BATCH;
      line = '';
      for (let i = 0; i < keys.length; i++) line += `mg ${keys[i]} f v k q\r\n`;
      line += 'mn\r\n';
    } else {
      kind = REPLY_GET;
      line = 'get';
      for (let i = 0; i < keys.length; i++) line += ` ${keys[i]}`;
      line += '\r\n';
    }
    const command = new Command(this, kind, '', keys, line, undefined);
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
    return this.write(verb, key, value, exptime, '');
  }

  fill(key: string, value: unknown, exptime: number, cas: string): Promise<StoreStatus> {
    return this.write('set', key, value, exptime, cas);
  }

  lease(key: string, leaseSeconds: number, recacheSeconds: number): Promise<LeaseReply> {
    const mode = this.mode;
    if (mode === META) {
      let line = `mg ${key} f v c t`;
      if (leaseSeconds > 0) line += ` N${leaseSeconds}`;
      if (recacheSeconds > 0) line += ` R${recacheSeconds}`;
      const command = new Command(this, REPLY_MG_LEASE, key, undefined, `${line}\r\n`, undefined);
      return this.run(command) as Promise<LeaseReply>;
    }
    if (mode === TEXT) return this.get(key).then(unleased);
    return this.afterLearning(() => this.lease(key, leaseSeconds, recacheSeconds));
  }

  /** `delete`: true when the key existed. */
  async delete(key: string): Promise<boolean> {
    const mode = this.mode;
    if (mode === UNKNOWN) return this.afterLearning(() => this.delete(key));
    const command =
      mode === META
        ? new Command(this, REPLY_MD, key, undefined, `md ${key}\r\n`, undefined)
        : new Command(this, REPLY_DELETE, key, undefined, `delete ${key}\r\n`, undefined);
    return (await this.run(command)) === 'DELETED';
  }

  async markStale(key: string, seconds: number): Promise<boolean> {
    const mode = this.mode;
    if (mode === UNKNOWN) return this.afterLearning(() => this.markStale(key, seconds));
    if (mode === TEXT) return this.delete(key);
    const line = `md ${key} I T${seconds}\r\n`;
    return (
      (await this.run(new Command(this, REPLY_MD, key, undefined, line, undefined))) === 'DELETED'
    );
  }

  async release(key: string, cas: string): Promise<boolean> {
    const mode = this.mode;
    if (mode === UNKNOWN) return this.afterLearning(() => this.release(key, cas));
    if (mode === TEXT || cas === '') return false;
    const line = `md ${key} C${cas}\r\n`;
    return (
      (await this.run(new Command(this, REPLY_MD, key, undefined, line, undefined))) === 'DELETED'
    );
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

  /**
   * Install our parser as the only reader of `connection`'s socket (before any reply to us), and
   * ask what the member speaks.
   */
  hook(connection: ConnectionInternals): void {
    const socket = connection.socket;
    const sink: ReplySink = {
      head: () => connection.peekCommand() as Command | undefined,
      complete: (status) => connection.dequeueCommand()?.callback(null, status),
      refuse: (line) => {
        const command = connection.dequeueCommand() as Command | undefined;
        if (command === undefined) return;
        if (line === 'ERROR') this.refusedMeta(command);
        else command.reject(new MemcachedReplyError(this.id, line));
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
    if (this.options.protocol !== 'text' && !this.metaRefused && !connection.isShutdown()) {
      this.ask(connection);
    }
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

  /**
   * A plain read took the recompute token of values marked stale (memcached hands it to the first
   * reader). Marking them stale again hands it back, so the next lease read recomputes them.
   */
  releaseStale(keys: readonly string[]): void {
    for (const key of keys) {
      const line = `md ${key} I\r\n`;
      this.run(new Command(this, REPLY_MD, key, undefined, line, undefined)).catch(() => undefined);
    }
  }

  /** `version` then `mn` on a new connection, ahead of any other command on it. */
  private ask(connection: ConnectionInternals): void {
    let version = '';
    const asked = new Command(this, REPLY_VERSION, '', undefined, 'version\r\n', undefined);
    asked.resolve = (status) => (version = String(status));
    // The `mn` behind it then fails the same way and reports it.
    asked.reject = () => undefined;
    const noop = new Command(this, REPLY_NOOP, '', undefined, 'mn\r\n', undefined);
    noop.resolve = (status) => this.learn(speaksMeta(version) && status === 'MN');
    noop.reject = (error) => {
      // Closed or garbled rather than answered (a proxy without these commands may do that):
      // the next connection speaks text without asking. A timeout says nothing: ask again.
      if (!isTimeout(error)) {
        this.metaRefused = true;
        this.mode = TEXT;
      }
      this.learnFailed(error);
    };
    write(connection, asked);
    write(connection, noop);
  }

  private learn(meta: boolean): void {
    this.mode = meta && !this.metaRefused ? META : TEXT;
    this.learned?.resolve();
    this.learned = undefined;
  }

  private learnFailed(error: unknown): void {
    // The next command asks again, on a new connection.
    this.learning = undefined;
    this.learned?.reject(error);
    this.learned = undefined;
  }

  /** Run `retry` once the member said what it speaks (rejects as the asking failed). */
  private afterLearning<T>(retry: () => Promise<T>): Promise<T> {
    if (this.client === undefined) return this.run(undefined) as Promise<T>;
    this.learning ??= new Promise<void>((resolve, reject) => {
      this.learned = { resolve, reject };
      try {
        // A connection that memcache-client had open already was hooked (and asked) then.
        const connecting = this.internals._servers.doCmd((connection) => {
          if (connection[PARSER] === undefined) this.hook(connection);
        }) as Promise<void> | undefined;
        connecting?.then(undefined, (error: unknown) =>
          this.learnFailed(this.failure(asError(error))),
        );
      } catch (error) {
        this.learnFailed(this.failure(asError(error)));
      }
    });
    return this.learning.then(retry);
  }

  /** `ERROR` to `version`, `mn` or a meta command: the member does not speak the meta protocol. */
  private refusedMeta(command: Command): void {
    switch (command.kind) {
      case REPLY_VERSION:
      case REPLY_NOOP:
        command.resolve('ERROR');
        return;
    }
    this.metaRefused = true;
    this.mode = TEXT;
    switch (command.kind) {
      case REPLY_MG:
        command.resolve(this.get(command.key));
        return;
      case REPLY_MG_BATCH:
        command.resolve(this.getMany(command.keys!));
        return;
      case REPLY_MG_LEASE:
        command.resolve(this.get(command.key).then(unleased));
        return;
      case REPLY_MD:
        command.resolve(
          this.run(
            new Command(
              this,
              REPLY_DELETE,
              command.key,
              undefined,
              `delete ${command.key}\r\n`,
              undefined,
            ),
          ),
        );
        return;
      default:
        command.reject(
          new MemcachedProtocolError(
            this.id,
            'ERROR to ms: the member does not speak the meta protocol',
          ),
        );
    }
  }

  /** `set`/`add`/fill: the value checked and encoded once, sent as `ms` or as text. */
  private write(
    verb: 'set' | 'add',
    key: string,
    value: unknown,
    exptime: number,
    cas: string,
  ): Promise<StoreStatus> {
    const mode = this.mode;
    if (mode === UNKNOWN)
      return this.afterLearning(() => this.write(verb, key, value, exptime, cas));
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
    let head: string;
    let kind: typeof REPLY_MS | typeof REPLY_STORE;
    if (mode === META) {
      kind = REPLY_MS;
      head = `ms ${key} ${bytes} T${exptime} F${flags}`;
      if (verb === 'add') head += ' ME';
      if (cas !== '') head += ` C${cas}`;
    } else {
      kind = REPLY_STORE;
      head = `${verb} ${key} ${flags} ${exptime} ${bytes}`;
    }
    if (text !== undefined) {
      const line = `${head}\r\n${text}\r\n`;
      return this.run(
        new Command(this, kind, key, undefined, line, undefined),
      ) as Promise<StoreStatus>;
    }
    return this.run(
      new Command(this, kind, key, undefined, `${head}\r\n`, value as Buffer),
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

  /** Queue `command` on a connection (`undefined`: only to fail as a closed one would). */
  private run(command: Command | undefined): Promise<unknown> {
    if (command === undefined || this.client === undefined) {
      return Promise.reject(new MemcachedMemberError(this.id, new Error('connection closed')));
    }
    const promise = new Promise<unknown>((resolve, reject) => {
      command.resolve = resolve;
      command.reject = reject;
    });
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

/** A command that failed because the member did not answer in time (not because it refused). */
function isTimeout(error: unknown): boolean {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  return cause instanceof Error && /timeout/i.test(cause.message);
}

/** `VERSION 1.6.10` or later (`VERSION 1.6.18`, `VERSION 1.6.21-…`). */
function speaksMeta(version: string): boolean {
  const match = /^VERSION (\d{1,4})\.(\d{1,4})\.(\d{1,4})/.exec(version);
  if (match === null) return false;
  for (let i = 0; i < 3; i++) {
    const part = Number(match[i + 1]);
    if (part !== META_SINCE[i]) return part > META_SINCE[i];
  }
  return true;
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
