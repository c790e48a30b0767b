// The store layer (lib/memcached/store/): `MemcachedStore`, the Keyv adapter users build, and its
// parts: its pool (`store-pool.ts`), the member feed from discovery (`member-feed.ts`), namespace
// generations, the error log. The constructor composes what lies below it: the pool (with ring/
// and protocol/ under it), options/, discovery/ and telemetry/, which it builds itself, so a
// store built by hand reports through OpenTelemetry by default; telemetry knows only the pool's
// observer port and stats, never the store. cache/, metrics/, health/ and the module use it.

import { Logger } from '@nestjs/common';
import type { LoggerService } from '@nestjs/common';
import type { KeyvStoreAdapter, StoredData } from 'keyv';
import { createMemberSource } from '../../discovery/member-source.factory.js';
import { memberId } from '../../discovery/member.js';
import type { ResolvedCacheOptions } from '../../options/cache-options.js';
import { withDeadline } from '../../util/deadline.js';
import { TypedEventEmitter } from '../../util/typed-events.js';
import type { MemcachedError } from '../../errors/memcached.errors.js';
import { createCacheTelemetry } from '../../telemetry/cache-telemetry.js';
import { ErrorLog } from './error-log.js';
import { encodeKey } from '../protocol/key-encoding.js';
import { MemberFeed } from './member-feed.js';
import type { MemcachedPool } from '../pool/memcached-pool.js';
import { NamespaceGeneration } from './namespace-generation.js';
import { createStorePool } from './store-pool.js';
import type { PoolEntry } from '../pool/memcached-pool.js';
import type {
  MemcachedStoreEvents,
  MemcachedStoreOptions,
  MemcachedStoreStats,
} from './store-options.js';
import { resolveStoreOptions } from './store-options.js';
import { copyExptime, toExptime } from '../protocol/ttl.js';

export type {
  MemcachedStoreEvents,
  MemcachedStoreOptions,
  MemcachedStoreStats,
} from './store-options.js';

const LOG_CONTEXT = 'K8sCache';
type Resolved = ResolvedCacheOptions;

/**
 * Keyv 5 storage adapter on a memcached pool whose members come from DNS (or a given source),
 * keys spread by a ketama ring:
 *
 * ```ts
 * const keyv = new Keyv({ store: new MemcachedStore({ host: 'mycache-memcached' }) });
 * ```
 *
 * A cache failure never reaches the caller: a dead or ejected member reads as a miss, a failed
 * write returns `false`, and the error is emitted as an `error` event (Keyv forwards it) and logged
 * at a bounded rate. Other events: `members` (members, diff), `eject` (memberId, error),
 * `readmit` (memberId, keptData), `refresh` (lookup result); see {@link MemcachedStoreEvents}.
 *
 * Keys are stored as `<namespace>:<generation>:<key>`, encoded when memcached could not take them
 * (see `encodeKey`); the generation is what `clear()` replaces.
 */
// Keyv 5 types `setMany` as Promise<void> but returns what the adapter resolves (one boolean per
// entry) from its own `setMany`, so ours resolves to that.
export class MemcachedStore
  extends TypedEventEmitter<MemcachedStoreEvents>
  implements Omit<KeyvStoreAdapter, 'setMany'>
{
  /** The resolved options (Keyv and its test suite read and write `opts`). */
  opts: Resolved & Record<string, unknown>;

  private readonly feed: MemberFeed;
  private readonly pool: MemcachedPool;
  private readonly logger: LoggerService;
  /** Stops the OpenTelemetry metrics read from `stats()`. */
  private readonly stopTelemetry: (() => void) | undefined;
  private readonly errorLog: ErrorLog;
  private disconnected = false;
  private readonly generations: NamespaceGeneration;
  /** `namespace + ':'` (what Keyv prefixes), '' without a namespace. */
  private namespacePrefix = '';

  constructor(options: MemcachedStoreOptions) {
    super();
    const resolved = resolveStoreOptions(options);
    this.opts = { ...resolved, dialect: 'memcache' };
    this.logger = options.logger ?? new Logger(); // calls pass LOG_CONTEXT, which a user's LoggerService needs too
    this.errorLog = new ErrorLog(this.logger, LOG_CONTEXT);
    // Undefined when off, or (by default) when @opentelemetry/api is not installed.
    const telemetry = createCacheTelemetry(resolved.telemetry);
    this.pool = createStorePool(
      resolved,
      options.commandObserver ?? telemetry?.observer,
      {
        // The store knows how values are serialized, so it tells how long a copy may live.
        copyExptime: (value, nowMs) => copyExptime(value, this.opts.ttl, nowMs),
        // Kept on every member; a member that restarted has lost it.
        restartMarker: () => this.generations.key(),
        untracked: (reason) => this.generations.untracked(reason),
      },
      {
        logger: this.logger,
        logContext: LOG_CONTEXT,
        report: (error) => this.report(error),
        requestRefresh: (reason) => this.feed.requestRefresh(reason),
        ejected: (member, error) => this.emit('eject', member, error),
        readmitted: (member, stale) => this.emit('readmit', member, stale),
      },
    );
    this.generations = new NamespaceGeneration({
      pool: this.pool,
      logger: this.logger,
      logContext: LOG_CONTEXT,
      ready: () => this.feed.ready,
      closed: () => this.disconnected,
      cacheTime: () => this.opts.generationCacheTime,
      changed: () => {
        // Every key of the old generation is unreachable: where they were written no longer matters.
        this.pool.forgetWrites();
        this.emit('generation');
      },
    });
    this.namespace = resolved.namespace;

    const source =
      options.source ?? createMemberSource({ ...resolved, host: resolved.host! }, options.logger);
    this.feed = new MemberFeed(source, options.source === undefined, this.pool, {
      logger: this.logger,
      logContext: LOG_CONTEXT,
      changed: (members, diff) => this.emit('members', members, diff),
      removed: (members) => members.forEach((member) => this.errorLog.forget(memberId(member))),
      lookedUp: (result) => this.emit('refresh', result),
    });
    this.stopTelemetry = telemetry?.observe(this);
  }

  /** The Keyv namespace (Keyv sets it); it scopes keys and `clear()`. */
  get namespace(): string | undefined {
    return this.generations.namespace;
  }

  /** Set by Keyv; changing it after use starts over with the new namespace's generation. */
  set namespace(namespace: string | undefined) {
    if (namespace === this.namespace) return;
    const previous = this.namespace;
    if (this.generations.setNamespace(namespace)) {
      // Keyv sets this once; a change after use means two Keyv instances share one store.
      this.logger.warn(
        `MemcachedStore namespace changed from "${previous}" to "${namespace}" after use: ` +
          'give each Keyv instance its own store, or clear() and reads mix namespaces',
        LOG_CONTEXT,
      );
    }
    this.namespacePrefix = namespace ? `${namespace}:` : '';
  }

  /** Resolves once the first member resolution is done (whatever its outcome). */
  ready(): Promise<void> {
    return this.feed.ready;
  }

  /** Current members as `host:port`, sorted (ejected members included). */
  servers(): string[] {
    return this.pool.members().map(memberId);
  }

  /** Re-resolve the members now; resolves when done, never rejects. */
  refresh(): Promise<void> {
    return this.feed.refresh();
  }

  /**
   * Counters per member and in total, the members currently on the ring, and how DNS discovery
   * fares (a stale member list behind a DNS outage shows there as `healthy: false`).
   */
  stats(): MemcachedStoreStats {
    return { ...this.pool.stats(), discovery: this.feed.stats() };
  }

  /**
   * True while the namespace generation was confirmed by the members within
   * `generationCacheTime` (a tier in front may serve its copies), false when the next read must
   * confirm it first. Busy callers reload it in the background before it lapses.
   * @internal
   */
  generationConfirmed(): boolean {
    return this.generations.current() !== '';
  }

  /** Keyv's serialized entry under `key`, or `undefined` on a miss or when no member answers. */
  get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    // Hot path without an async frame of its own: the pool's promise is handed back as is.
    const prefix = this.generations.current();
    if (prefix !== '') {
      return this.pool.get(this.storageKey(prefix, key)) as Promise<StoredData<Value> | undefined>;
    }
    return this.getAfterGeneration(key);
  }

  /** Entries of `keys` in order: one multi-get per member (per 100 keys), members in parallel. */
  async getMany<Value>(keys: string[]): Promise<Array<StoredData<Value | undefined>>> {
    const prefix = this.generations.current() || (await this.generations.load());
    if (prefix === undefined) return new Array<undefined>(keys.length).fill(undefined);
    const encoded = new Array<string>(keys.length);
    for (let i = 0; i < keys.length; i++) encoded[i] = this.storageKey(prefix, keys[i]);
    return (await this.pool.getMany(encoded)) as Array<StoredData<Value | undefined>>;
  }

  /**
   * Store a value; `ttl` in ms (rounded up to whole seconds plus one; 0 or undefined: the `ttl` option,
   * whose default 0 means no expiry). Resolves to false when the value was not stored.
   */
  set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const prefix = this.generations.current();
    if (prefix !== '') {
      return this.pool.set(this.storageKey(prefix, key), value, toExptime(ttl || this.opts.ttl));
    }
    return this.setAfterGeneration(key, value, ttl);
  }

  /** Store many values (in parallel across members); one boolean per entry, in order. */
  async setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<boolean[]> {
    const prefix = this.generations.current() || (await this.generations.load());
    if (prefix === undefined) return new Array<boolean>(entries.length).fill(false);
    const now = Date.now();
    const send = entries.map(({ key, value, ttl }): PoolEntry => ({
      key: this.storageKey(prefix, key),
      value,
      exptime: toExptime(ttl || this.opts.ttl, now),
    }));
    return this.pool.setMany(send);
  }

  /** Delete a key: true when it existed. */
  async delete(key: string): Promise<boolean> {
    const prefix = this.generations.current() || (await this.generations.load());
    if (prefix === undefined) return false;
    return this.pool.delete(this.storageKey(prefix, key));
  }

  /** Delete many keys (in parallel across members): true when every one existed. */
  async deleteMany(keys: string[]): Promise<boolean> {
    const prefix = this.generations.current() || (await this.generations.load());
    if (prefix === undefined) return false;
    const deleted = await this.pool.deleteMany(keys.map((key) => this.storageKey(prefix, key)));
    return deleted.length > 0 && deleted.every(Boolean);
  }

  /**
   * Empty this namespace, and only it: other namespaces and other applications sharing the
   * memcached cluster keep their entries (no `flush_all`). A new generation token is written to
   * every member (see `NamespaceGeneration`); other processes, busy or idle, switch within
   * `generationCacheTime` ms (default 1 s) plus one round trip. A member that is down during
   * `clear()` keeps the old token until it answers again; the newer token on the other members
   * wins then.
   */
  clear(): Promise<void> {
    return this.generations.clear();
  }

  /** Close every connection, stop discovery and its timers; the process can then exit. */
  async disconnect(): Promise<void> {
    if (this.disconnected) return;
    this.disconnected = true;
    this.feed.stop();
    this.stopTelemetry?.();
    this.pool.close();
    this.generations.reset();
    this.errorLog.clear();
  }

  /**
   * The first get: after the generation is known. The whole call waits at most about one
   * `commandTimeout` after start-up: when the generation load took part of it (a member that
   * hangs), the get reads as a miss at that point (the command itself goes on and is counted).
   */
  private async getAfterGeneration<Value>(key: string): Promise<StoredData<Value> | undefined> {
    await this.feed.ready;
    const ready = Date.now();
    const prefix = await this.generations.load();
    if (prefix === undefined) return undefined;
    const get = this.pool.get(this.storageKey(prefix, key));
    const left = this.opts.commandTimeout - (Date.now() - ready);
    return (await withDeadline(get, left, () => undefined)) as StoredData<Value>;
  }

  private async setAfterGeneration(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const prefix = await this.generations.load();
    if (prefix === undefined) return false;
    return this.pool.set(this.storageKey(prefix, key), value, toExptime(ttl || this.opts.ttl));
  }

  /** The memcached key of Keyv's `key` under the generation `prefix`. */
  private storageKey(prefix: string, key: string): string {
    return encodeKey(prefix + this.unprefixed(key));
  }

  /**
   * Keyv passes keys as `namespace:key`; the namespace is part of the prefix already. Keyv 5's
   * single-key calls leave a key that starts with `namespace:` as is while `getMany` prefixes
   * it again, so every leading repetition is dropped: both calls then reach the same entry.
   */
  private unprefixed(key: string): string {
    const prefix = this.namespacePrefix;
    if (prefix === '') return key;
    let start = 0;
    while (key.startsWith(prefix, start)) start += prefix.length;
    return start === 0 ? key : key.slice(start);
  }

  private report(error: MemcachedError): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
    this.errorLog.log(error);
  }
}
