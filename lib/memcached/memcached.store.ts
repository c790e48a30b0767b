import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Logger } from '@nestjs/common';
import type { LoggerService } from '@nestjs/common';
import type { KeyvStoreAdapter, StoredData } from 'keyv';
import { MemberDiscovery } from '../discovery/member-discovery.js';
import { memberId } from '../discovery/member.js';
import type {
  DiscoveryStats,
  LookupResult,
  Member,
  MemberDiff,
  MemberSource,
} from '../discovery/member.js';
import { resolveCacheOptions } from '../cache/cache-options.js';
import type { ResolvedCacheOptions } from '../cache/cache-options.js';
import { K8sOptionsError } from '../errors/k8s.error.js';
import { withDeadline } from '../util/deadline.js';
import {
  MemcachedKeyMismatchError,
  MemcachedMemberError,
  MemcachedReplyError,
  MemcachedValueTooLargeError,
} from '../errors/memcached.errors.js';
import type { MemcachedError } from '../errors/memcached.errors.js';
import type { K8sCacheOptions } from '../interfaces/k8s-options.interface.js';
import { createCacheTelemetry } from '../telemetry/cache-telemetry.js';
import type { CommandObserver } from './command-observer.js';
import { encodeKey } from './key-encoding.js';
import { MemcachedPool } from './memcached-pool.js';
import type { PoolEntry, PoolStats } from './memcached-pool.js';
import { copyExptime, toExptime } from './ttl.js';

const LOG_CONTEXT = 'K8sCache';
/**
 * At most one new generation per this many ms for members that come back holding stale entries;
 * meanwhile such a member stays out of the ring, so a flapping member cannot flush the cache again
 * and again.
 */
const STALE_GENERATION_INTERVAL = 300_000;

/** At most one log line per member (or error kind) per this many ms; the rest are counted. */
const LOG_INTERVAL = 5_000;

/** Options of `MemcachedStore`: the cache options of `K8sModule`, plus injection points. */
export interface MemcachedStoreOptions extends K8sCacheOptions {
  /**
   * Where the members come from, instead of resolving `host` (tests, a fixed list). The store
   * subscribes to it but does not stop it on `disconnect()`: the caller owns it.
   * @default a `MemberDiscovery` of `host`
   */
  source?: MemberSource;
  /** Where log lines go. @default Nest's Logger, context 'K8sCache' */
  logger?: LoggerService;
  /** Sees every command sent to a member, instead of the `telemetry` one. @default from `telemetry` */
  commandObserver?: CommandObserver;
}

/**
 * The events of `MemcachedStore` and their arguments (`store.on('eject', (member, error) => …)`).
 * Listeners run synchronously in the store's code paths: keep them quick, and never throw.
 */
export interface MemcachedStoreEvents {
  /** The member list changed: every member now (ejected ones included), and what changed. */
  members: [members: readonly Member[], diff: MemberDiff];
  /** A member left the ring after `failureLimit` consecutive failures that break it. */
  eject: [member: string, error: MemcachedError];
  /**
   * An ejected member answered its probe and is back on the ring; `keptData`: it did not restart
   * meanwhile, so a new generation was started (its entries may be stale).
   */
  readmit: [member: string, keptData: boolean];
  /** A cache operation failed (it read as a miss or resolved `false`); Keyv forwards these. */
  error: [error: MemcachedError];
  /** A DNS lookup of the members ended (only with DNS discovery), changed or not. */
  refresh: [result: LookupResult];
}

type Resolved = ResolvedCacheOptions;

/** What `MemcachedStore.stats()` reports. */
export interface MemcachedStoreStats extends PoolStats {
  /** Health of the member source; undefined for sources that keep none (a fixed list). */
  readonly discovery: DiscoveryStats | undefined;
}

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
export class MemcachedStore extends EventEmitter implements Omit<KeyvStoreAdapter, 'setMany'> {
  /** The resolved options (Keyv and its test suite read and write `opts`). */
  opts: Resolved & Record<string, unknown>;

  private readonly source: MemberSource;
  private readonly ownsSource: boolean;
  private readonly pool: MemcachedPool;
  private readonly logger: LoggerService;
  private readonly readyPromise: Promise<void>;
  private readonly unsubscribe: () => void;
  /** Stops the OpenTelemetry metrics read from `stats()`. */
  private readonly stopTelemetry: (() => void) | undefined;
  private readonly logState = new Map<string, { at: number; suppressed: number }>();
  private disconnected = false;
  /** Members whose stale entries started a generation, and when (pruned after the interval). */
  private readonly staleGenerations = new Map<string, number>();
  /** When this process last switched to a generation it made (`clear()` or a stale member). */
  private generationStartedAt = 0;

  private namespaceValue: string | undefined;
  /** `namespace + ':'` (what Keyv prefixes), '' without a namespace. */
  private namespacePrefix = '';
  /** `<namespace>:<generation>:`, or '' until the generation is known; reloaded after `generationExpires`. */
  private keyPrefix = '';
  private generationExpires = 0;
  private generationLoading: Promise<string | undefined> | undefined;
  /** Bumped by `clear()` and namespace changes: a lookup started before must not win. */
  private generationEpoch = 0;
  /** The token behind `keyPrefix` ('' before the first load). */
  private generationToken = '';

  constructor(options: MemcachedStoreOptions) {
    super();
    const resolved = resolveStoreOptions(options);
    this.opts = { ...resolved, dialect: 'memcache' };
    this.logger = options.logger ?? new Logger(); // calls pass LOG_CONTEXT, which a user's LoggerService needs too
    this.namespace = resolved.namespace;
    // Undefined when off, or (by default) when @opentelemetry/api is not installed.
    const telemetry = createCacheTelemetry(resolved.telemetry);
    this.pool = new MemcachedPool({
      connectTimeout: resolved.connectTimeout,
      commandTimeout: resolved.commandTimeout,
      maxConnections: resolved.maxConnections,
      noDelay: resolved.noDelay,
      tls: resolved.tls,
      collectTimings: resolved.collectTimings,
      failureLimit: resolved.failureLimit,
      retryTimeout: resolved.retryTimeout,
      warmupPeriod: resolved.warmupPeriod,
      replicas: resolved.replicas,
      maxValueSize: resolved.maxValueSize,
      commandObserver: options.commandObserver ?? telemetry?.observer,
      policy: {
        // The store knows how values are serialized, so it tells how long a copy may live.
        copyExptime: (value, nowMs) => copyExptime(value, this.opts.ttl, nowMs),
        // Kept on every member; a member that restarted has lost it.
        restartMarker: () => this.generationKey(),
        admitStale: (member, since) => this.admitStale(member, since),
      },
    });
    this.pool.on('failure', (error) => this.report(error));
    this.pool.on('memberFailure', (member, error) =>
      this.source.requestRefresh(`memcached member ${member}: ${causeOf(error)}`),
    );
    this.pool.on('eject', (member, error) => {
      this.logger.warn(
        `memcached member ${member} ejected from the ring after ${resolved.failureLimit} consecutive ` +
          `failures (last: ${causeOf(error)}); its keys go to the next member, and it is probed ` +
          `after ${resolved.retryTimeout} ms (longer while it keeps failing) until it answers`,
        LOG_CONTEXT,
      );
      this.emit('eject', member, error);
    });
    this.pool.on('readmit', (member, stale) => {
      if (!stale)
        this.logger.log(`memcached member ${member} re-admitted to the ring`, LOG_CONTEXT);
      this.emit('readmit', member, stale);
    });

    this.ownsSource = options.source === undefined;
    this.source =
      options.source ??
      new MemberDiscovery({
        host: resolved.host!,
        port: resolved.port,
        dnsServers: resolved.dnsServers,
        refreshInterval: resolved.refreshInterval,
        minRefreshInterval: resolved.minRefreshInterval,
        lookupTimeout: resolved.lookupTimeout,
        logger: options.logger,
      });
    const unsubscribeChanges = this.source.onChange((members, diff) =>
      this.applyMembers(members, diff),
    );
    const unsubscribeLookups = this.source.onLookup?.((result) => this.emit('refresh', result));
    this.unsubscribe = () => {
      unsubscribeChanges();
      unsubscribeLookups?.();
    };
    this.stopTelemetry = telemetry?.observe(this);
    // Never rejects: a failing source or `members` listener must not turn every operation
    // into an error.
    this.readyPromise = this.source
      .start()
      .then(() => this.applyMembers(this.source.members()))
      .catch((error: unknown) =>
        this.logger.error(`memcached member source failed to start: ${String(error)}`, LOG_CONTEXT),
      );
  }

  /** The Keyv namespace (Keyv sets it); it scopes keys and `clear()`. */
  get namespace(): string | undefined {
    return this.namespaceValue;
  }

  /** Set by Keyv; changing it after use starts over with the new namespace's generation. */
  set namespace(namespace: string | undefined) {
    if (namespace === this.namespaceValue) return;
    if (this.keyPrefix !== '') {
      // Keyv sets this once; a change after use means two Keyv instances share one store.
      this.logger.warn(
        `MemcachedStore namespace changed from "${this.namespaceValue}" to "${namespace}" after use: ` +
          'give each Keyv instance its own store, or clear() and reads mix namespaces',
        LOG_CONTEXT,
      );
    }
    this.namespaceValue = namespace;
    this.namespacePrefix = namespace ? `${namespace}:` : '';
    this.keyPrefix = '';
    this.generationToken = '';
    this.generationEpoch++;
  }

  /** Resolves once the first member resolution is done (whatever its outcome). */
  ready(): Promise<void> {
    return this.readyPromise;
  }

  /** Current members as `host:port`, sorted (ejected members included). */
  servers(): string[] {
    return this.pool.members().map(memberId);
  }

  /** Re-resolve the members now; resolves when done, never rejects. */
  async refresh(): Promise<void> {
    await this.source.refresh();
    this.applyMembers(this.source.members());
  }

  /**
   * Counters per member and in total, the members currently on the ring, and how DNS discovery
   * fares (a stale member list behind a DNS outage shows there as `healthy: false`).
   */
  stats(): MemcachedStoreStats {
    return { ...this.pool.stats(), discovery: this.source.stats?.() };
  }

  /** Keyv's serialized entry under `key`, or `undefined` on a miss or when no member answers. */
  get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    // Hot path without an async frame of its own: the pool's promise is handed back as is.
    const prefix = this.currentPrefix();
    if (prefix !== '') {
      return this.pool.get(encodeKey(prefix + this.unprefixed(key))) as Promise<
        StoredData<Value> | undefined
      >;
    }
    return this.getAfterGeneration(key);
  }

  /** Entries of `keys` in order: one multi-get per member (per 100 keys), members in parallel. */
  async getMany<Value>(keys: string[]): Promise<Array<StoredData<Value | undefined>>> {
    const prefix = this.currentPrefix() || (await this.generation());
    if (prefix === undefined) return new Array<undefined>(keys.length).fill(undefined);
    const encoded = new Array<string>(keys.length);
    for (let i = 0; i < keys.length; i++) encoded[i] = encodeKey(prefix + this.unprefixed(keys[i]));
    return (await this.pool.getMany(encoded)) as Array<StoredData<Value | undefined>>;
  }

  /**
   * Store a value; `ttl` in ms (rounded up to whole seconds plus one; 0 or undefined: the `ttl` option,
   * whose default 0 means no expiry). Resolves to false when the value was not stored.
   */
  set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    if (this.tooLarge(key, value)) return this.dropTooLarge([key]);
    const prefix = this.currentPrefix();
    if (prefix !== '') {
      return this.pool.set(
        encodeKey(prefix + this.unprefixed(key)),
        value,
        toExptime(ttl || this.opts.ttl),
      );
    }
    return this.setAfterGeneration(key, value, ttl);
  }

  /** Store many values (in parallel across members); one boolean per entry, in order. */
  async setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<boolean[]> {
    const prefix = this.currentPrefix() || (await this.generation());
    const results = new Array<boolean>(entries.length).fill(false);
    if (prefix === undefined) return results;
    const now = Date.now();
    const send: PoolEntry[] = [];
    const positions: number[] = [];
    const refused: string[] = [];
    for (let i = 0; i < entries.length; i++) {
      const { key, value, ttl } = entries[i];
      if (this.tooLarge(key, value)) {
        refused.push(encodeKey(prefix + this.unprefixed(key)));
        continue;
      }
      positions.push(i);
      send.push({
        key: encodeKey(prefix + this.unprefixed(key)),
        value,
        exptime: toExptime(ttl || this.opts.ttl, now),
      });
    }
    const [stored] = await Promise.all([this.pool.setMany(send), this.pool.deleteMany(refused)]);
    for (let i = 0; i < positions.length; i++) results[positions[i]] = stored[i];
    return results;
  }

  /** Delete a key: true when it existed. */
  async delete(key: string): Promise<boolean> {
    const prefix = this.currentPrefix() || (await this.generation());
    if (prefix === undefined) return false;
    return this.pool.delete(encodeKey(prefix + this.unprefixed(key)));
  }

  /** Delete many keys (in parallel across members): true when every one existed. */
  async deleteMany(keys: string[]): Promise<boolean> {
    const prefix = this.currentPrefix() || (await this.generation());
    if (prefix === undefined) return false;
    const deleted = await this.pool.deleteMany(
      keys.map((key) => encodeKey(prefix + this.unprefixed(key))),
    );
    return deleted.length > 0 && deleted.every(Boolean);
  }

  /**
   * Empty this namespace, and only it: other namespaces and other applications sharing the
   * memcached cluster keep their entries (no `flush_all`).
   *
   * Every key lives under `<namespace>:<generation>:`. The generation is a token (creation time
   * plus random bits) kept under `<namespace>:~gen` on every member, not on one: a member that
   * joins, restarts or is evicted empty gets the newest token copied to it, so a change of
   * members never empties the namespace by accident. `clear()` writes a newer token to every
   * member: from then on this process reads and writes under it at once, and other processes
   * switch within `generationCacheTime` ms (default 1 s) plus one round trip, when their cached
   * token expires. Old entries are never read again and age out through memcached's LRU or
   * their TTL. Tokens are random rather than a counter so that losing every copy of the
   * generation key can never bring back an older generation: a fresh token is made instead.
   *
   * A member that is down during `clear()` keeps the old token until it answers again; the newer
   * token on the other members wins then.
   */
  async clear(): Promise<void> {
    await this.readyPromise;
    const key = this.generationKey();
    // Newer than every token a member holds, whatever this pod's clock says: otherwise other
    // processes' "newest wins" would bring the old generation back.
    let newest = this.generationToken;
    for (const { value } of await this.pool.getOnEach(key)) {
      if (typeof value === 'string' && isToken(value) && value > newest) newest = value;
    }
    await this.switchGeneration(newToken(newest));
  }

  /** Use `token` in this process from now on (synchronously), then give it to every member. */
  private async switchGeneration(token: string): Promise<void> {
    this.generationStartedAt = Date.now();
    this.generationEpoch++;
    this.useGeneration(token);
    const stored = await this.pool.setOnEach(this.generationKey(), token, 0);
    const missed = stored.filter((ok) => !ok).length;
    if (missed > 0) {
      this.logger.warn(
        `a new generation reached ${stored.length - missed} of ${stored.length} memcached ` +
          'members; the others get it from this process when they answer again',
        LOG_CONTEXT,
      );
    }
  }

  /**
   * A member that kept entries while writes went elsewhere (out since `since`) answers again. A
   * generation started in this process after `since` already hides its entries: admitted. Else a
   * new generation is started (switched here synchronously, before the member is back on the
   * ring), unless this member started one within `STALE_GENERATION_INTERVAL`: then it stays out.
   */
  private admitStale(member: string, since: number): boolean {
    if (this.generationStartedAt >= since) return true;
    const now = Date.now();
    for (const [id, at] of this.staleGenerations) {
      if (now - at >= STALE_GENERATION_INTERVAL) this.staleGenerations.delete(id);
    }
    if (this.staleGenerations.has(member)) return false;
    this.staleGenerations.set(member, now);
    this.logger.warn(
      `memcached member ${member} answers again without having restarted; starting a new ` +
        'generation so none of its stale entries is read',
      LOG_CONTEXT,
    );
    void this.switchGeneration(newToken(this.generationToken));
    return true;
  }

  /** Close every connection, stop discovery and its timers; the process can then exit. */
  async disconnect(): Promise<void> {
    if (this.disconnected) return;
    this.disconnected = true;
    this.unsubscribe();
    this.stopTelemetry?.();
    if (this.ownsSource) this.source.stop();
    this.pool.close();
    this.keyPrefix = '';
    this.logState.clear();
  }

  /**
   * The first get: after the generation is known. The whole call waits at most about one
   * `commandTimeout` after start-up: when the generation load took part of it (a member that
   * hangs), the get reads as a miss at that point (the command itself goes on and is counted).
   */
  private async getAfterGeneration<Value>(key: string): Promise<StoredData<Value> | undefined> {
    await this.readyPromise;
    const ready = Date.now();
    const prefix = await this.generation();
    if (prefix === undefined) return undefined;
    const get = this.pool.get(encodeKey(prefix + this.unprefixed(key)));
    const left = this.opts.commandTimeout - (Date.now() - ready);
    return (await withDeadline(get, left, undefined)) as StoredData<Value>;
  }

  private async setAfterGeneration(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const prefix = await this.generation();
    if (prefix === undefined) return false;
    return this.pool.set(
      encodeKey(prefix + this.unprefixed(key)),
      value,
      toExptime(ttl || this.opts.ttl),
    );
  }

  private applyMembers(members: readonly Member[], diff?: MemberDiff): void {
    if (this.disconnected) return;
    const applied = this.pool.setMembers(members);
    for (const member of applied.removed) this.logState.delete(memberId(member));
    const change = diff ?? applied;
    if (applied.added.length > 0 || applied.removed.length > 0) {
      this.logger.log(
        `memcached members: ${members.map(memberId).join(', ') || '(none)'}`,
        LOG_CONTEXT,
      );
      try {
        this.emit('members', members, change);
      } catch (error) {
        // A listener's bug must not stop the store from following its members.
        this.logger.error(`a 'members' listener threw: ${String(error)}`, LOG_CONTEXT);
      }
    }
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

  private generationKey(): string {
    return encodeKey(`${this.namespaceValue ?? ''}:~gen`);
  }

  private useGeneration(token: string): void {
    this.generationToken = token;
    this.keyPrefix = `${this.namespaceValue ?? ''}:${token}:`;
    this.generationExpires = Date.now() + this.opts.generationCacheTime;
  }

  /**
   * The prefix of the current generation, '' when none is known yet. Past `generationCacheTime`
   * it is reloaded in the background (stale-while-revalidate): traffic never waits on the
   * reload, which asks every member.
   */
  private currentPrefix(): string {
    if (this.keyPrefix !== '' && Date.now() >= this.generationExpires) void this.generation();
    return this.keyPrefix;
  }

  /** Load the generation (single-flight); resolves to the key prefix, undefined when unknown. */
  private generation(): Promise<string | undefined> {
    this.generationLoading ??= this.loadGeneration().finally(() => {
      this.generationLoading = undefined;
    });
    return this.generationLoading;
  }

  private async loadGeneration(): Promise<string | undefined> {
    await this.readyPromise;
    for (;;) {
      if (this.disconnected) return undefined;
      const epoch = this.generationEpoch;
      const key = this.generationKey();
      const answers = await this.pool.getOnEach(key);
      if (this.disconnected) return undefined;
      // A clear() or a namespace change while we asked: ask again for the new state.
      if (epoch !== this.generationEpoch) continue;
      // Newest wins, this process's own token included: a clear() that some members missed is
      // pushed to them rather than undone by their older token.
      let newest = isToken(this.generationToken) ? this.generationToken : undefined;
      let reached = 0;
      for (const { value, failed } of answers) {
        if (failed) continue;
        reached++;
        if (
          typeof value === 'string' &&
          isToken(value) &&
          (newest === undefined || value > newest)
        ) {
          newest = value;
        }
      }
      if (reached === 0) {
        // Keep serving under the last known generation; try again after the cache time.
        this.generationExpires = Date.now() + this.opts.generationCacheTime;
        return this.keyPrefix || undefined;
      }
      // Nobody has one (first use, or every copy lost): start a new generation.
      const token = newest ?? newToken('');
      const stale = answers.filter((a) => !a.failed && a.value !== token).map((a) => a.member);
      if (stale.length > 0) await this.pool.setOnEach(key, token, 0, stale);
      if (this.disconnected) return undefined;
      if (epoch !== this.generationEpoch) continue;
      this.useGeneration(token);
      return this.keyPrefix;
    }
  }

  /** memcached drops the old item when it refuses a new one; do the same when we refuse it. */
  private async dropTooLarge(keys: string[]): Promise<false> {
    const prefix = this.currentPrefix() || (await this.generation());
    if (prefix !== undefined) {
      await this.pool.deleteMany(keys.map((key) => encodeKey(prefix + this.unprefixed(key))));
    }
    return false;
  }

  private tooLarge(key: string, value: unknown): boolean {
    const max = this.opts.maxValueSize;
    let size = 0;
    // A string of n UTF-16 units takes at most 3n bytes: only long ones need measuring.
    if (typeof value === 'string') size = value.length * 3 > max ? Buffer.byteLength(value) : 0;
    else if (Buffer.isBuffer(value)) size = value.length;
    if (size <= max) return false;
    this.report(new MemcachedValueTooLargeError(key, size, max));
    return true;
  }

  private report(error: MemcachedError): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
    const bucket =
      error instanceof MemcachedMemberError || error instanceof MemcachedReplyError
        ? error.member
        : error instanceof MemcachedKeyMismatchError
          ? `${error.member} key check`
          : error.name;
    const now = Date.now();
    const state = this.logState.get(bucket);
    if (state !== undefined && now - state.at < LOG_INTERVAL) {
      state.suppressed++;
      return;
    }
    const suppressed = state?.suppressed ?? 0;
    this.logState.set(bucket, { at: now, suppressed: 0 });
    this.logger.error(
      suppressed > 0
        ? `${error.message} (${suppressed} similar errors not logged in the last ${Math.round((now - state!.at) / 1000)} s)`
        : error.message,
      LOG_CONTEXT,
    );
  }
}

/**
 * A generation token: creation time (fixed-width base 36, so newer tokens sort higher) and random
 * bits. Never older than `after`, so a clear by a process with a slow clock still wins.
 */
function newToken(after: string): string {
  const afterTime = isToken(after) ? parseInt(after.slice(0, TOKEN_TIME_WIDTH), 36) + 1 : 0;
  const time = Math.max(Date.now(), afterTime).toString(36).padStart(TOKEN_TIME_WIDTH, '0');
  return `${time}.${randomBytes(6).toString('base64url')}`;
}

const TOKEN_TIME_WIDTH = 9;
const TOKEN_PATTERN = /^[0-9a-z]{9}\.[A-Za-z0-9_-]{8}$/;

function isToken(value: string): boolean {
  return TOKEN_PATTERN.test(value);
}

function causeOf(error: MemcachedError): string {
  const cause = error instanceof MemcachedMemberError ? error.cause : error.message;
  return cause instanceof Error ? cause.message : String(cause);
}

function resolveStoreOptions(options: MemcachedStoreOptions): Resolved {
  if (options === null || typeof options !== 'object') {
    throw new K8sOptionsError('MemcachedStore needs options: { host } or { source }.');
  }
  const resolved = resolveCacheOptions(options);
  if (options.source === undefined && resolved.host === undefined) {
    throw new K8sOptionsError(
      'MemcachedStore needs a host (a DNS name, name:port, SRV name or comma list) or a member source.',
    );
  }
  return resolved;
}
