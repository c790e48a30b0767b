import { Logger } from '@nestjs/common';
import type { Cache } from 'cache-manager';
import type Keyv from 'keyv';
import type { LeaseReply } from '../memcached/store/memcached.store.js';

/** What `FleetWrap` needs from the memcached store (`MemcachedStore`). */
export interface LeaseStore {
  lease(key: string, leaseMs: number, forceRecache: boolean): Promise<LeaseReply | undefined>;
  fill(key: string, value: unknown, ttl: number | undefined, cas: string): Promise<boolean>;
  release(key: string, cas: string): Promise<boolean>;
}

/** The options `FleetWrap` applies (the resolved cache options). */
export interface FleetWrapOptions {
  /** Default ttl in ms (0: none). */
  readonly ttl: number;
  readonly refreshThreshold: number;
  readonly staleWhileRevalidate: number;
  readonly leaseTtl: number;
  readonly leaseWait: number;
}

/** cache-manager's `wrap` options: a ttl and refresh threshold, each a number or of the value. */
export type WrapTtl<T> = number | ((value: T) => number);
export interface WrapOptions<T> {
  ttl?: WrapTtl<T>;
  refreshThreshold?: WrapTtl<T>;
  raw?: boolean;
}

/**
 * Where a `wrap` result came from: the cache (`hit`; `stale`: past its freshness, served while
 * another caller refreshes it), this call's own function run (`loaded`), or another caller's
 * (`waited`: in this process, or a lease holder's in any pod).
 */
export type WrapSource = 'hit' | 'stale' | 'loaded' | 'waited';
export interface WrapResult<T> {
  readonly value: T;
  readonly source: WrapSource;
  /** Keyv's `expires` of the value (epoch ms), undefined for none. */
  readonly expires: number | undefined;
}

/** Polling for another caller's lease: first delay, growth, cap (ms). */
const FIRST_POLL = 5;
const POLL_GROWTH = 1.5;
const MAX_POLL = 100;

interface Entry {
  value: unknown;
  expires?: number | null;
}

/**
 * `wrap` across pods: cache-manager's `wrap` (in-process coalescing, tiers, ttl and
 * `refreshThreshold` of the value) with memcached's leases behind it.
 *
 * - In front, concurrent calls for a key in this process share one run.
 * - A miss takes a lease (`mg … N`): exactly one caller fleet-wide runs the function and writes
 *   the result with the lease's CAS (a delete or write meanwhile wins); the others poll with
 *   back-off until the value is there, the lease lapses (one of them takes it over) or
 *   `leaseWait` has passed (then they run the function themselves). A caller whose function
 *   throws gives its lease back.
 * - A value in its refresh window (the last `staleWhileRevalidate` ms of its life, or
 *   `refreshThreshold`) is served at once; the first caller fleet-wide to see it in the window
 *   (`R`: memcached hands the win to one) refreshes it in the background.
 * - A value marked stale by a delete (`staleOnDelete`) is served while one caller recomputes it
 *   (that caller waits for its result).
 * - A value past its expiry that memcached still holds (it counts whole seconds) is never served:
 *   one caller wins its refresh, the others wait as on a miss.
 *
 * A member without the meta protocol (or no member at all) has no leases: a miss runs the
 * function in this process, as cache-manager does.
 */
export class FleetWrap {
  private readonly logger = new Logger('K8sCache');
  private readonly running = new Map<string, Promise<WrapResult<unknown>>>();
  private readonly refreshing = new Set<string>();
  private readonly window: number;

  constructor(
    private readonly remote: Keyv,
    private readonly local: Keyv | undefined,
    private readonly store: LeaseStore,
    private readonly options: FleetWrapOptions,
  ) {
    this.window = options.staleWhileRevalidate || options.refreshThreshold;
  }

  /** cache-manager's `wrap` signature and result. */
  async wrap<T>(
    key: string,
    fn: () => T | Promise<T>,
    ttlOrOptions?: WrapTtl<T> | WrapOptions<T>,
    refreshThreshold?: WrapTtl<T>,
  ): Promise<T> {
    const options: WrapOptions<T> =
      typeof ttlOrOptions === 'object' && ttlOrOptions !== null
        ? ttlOrOptions
        : { ttl: ttlOrOptions, refreshThreshold };
    const result = await this.run(key, fn, options);
    return (options.raw ? { value: result.value, expires: result.expires } : result.value) as T;
  }

  /** `wrap`, telling where the value came from. */
  run<T>(key: string, fn: () => T | Promise<T>, options: WrapOptions<T>): Promise<WrapResult<T>> {
    const running = this.running.get(key);
    if (running !== undefined) {
      return running.then((r) =>
        r.source === 'loaded' ? { ...r, source: 'waited' } : r,
      ) as Promise<WrapResult<T>>;
    }
    const run = this.resolve(key, fn, options).finally(() => this.running.delete(key));
    this.running.set(key, run as Promise<WrapResult<unknown>>);
    return run;
  }

  private async resolve<T>(
    key: string,
    fn: () => T | Promise<T>,
    options: WrapOptions<T>,
  ): Promise<WrapResult<T>> {
    if (this.local !== undefined) {
      const entry = (await this.local.get(key, { raw: true })) as Entry | undefined;
      if (entry !== undefined && !this.inWindow(entry, options)) {
        return { value: entry.value as T, source: 'hit', expires: entry.expires ?? undefined };
      }
    }
    const storeKey = this.storeKey(key);
    const deadline = Date.now() + this.options.leaseWait;
    let delay = FIRST_POLL;
    let force = false;
    let waited = false;
    for (;;) {
      const forced = force;
      const reply = await this.store.lease(storeKey, this.options.leaseTtl, force);
      force = false;
      if (reply === undefined || !reply.leased) return this.loadUnleased(key, fn, options, reply);
      const entry = await this.decode(reply.value);
      const now = Date.now();
      if (entry !== undefined && !expiredAt(entry, now)) {
        const expires = entry.expires ?? undefined;
        if (reply.stale) {
          // Marked stale by a delete: one caller recomputes (and waits for it), the others are
          // served the old value meanwhile.
          if (reply.win) return this.load(key, fn, options, reply.cas);
          return { value: entry.value as T, source: 'stale', expires };
        }
        const due = this.inWindow(entry, options);
        if (due && !reply.win && !reply.pending && !forced) {
          // Due by this pod's clock, and nobody holds the refresh yet: ask for it.
          force = true;
          continue;
        }
        if (due && reply.win) this.refresh(key, fn, options, reply.cas);
        if (!due) await this.copyToLocal(key, entry, now);
        const source = waited ? 'waited' : due ? 'stale' : 'hit';
        return { value: entry.value as T, source, expires };
      }
      if (reply.win) return this.load(key, fn, options, reply.cas);
      if (!reply.pending) {
        // A plain miss (no lease given: leases off, or memcached could not make one), a value
        // expired or unreadable with leases off, or one nobody refreshes even when asked to.
        if (
          forced ||
          this.options.leaseTtl === 0 ||
          (!reply.placeholder && reply.value === undefined)
        ) {
          return this.loadUnleased(key, fn, options, reply);
        }
        // Expired (or unreadable) with nobody refreshing it yet: ask for the refresh.
        force = true;
        continue;
      }
      // Another caller holds the lease: wait for its value.
      if (Date.now() + delay > deadline) {
        this.logger.warn(
          `wrap("${key}"): no value after waiting ${this.options.leaseWait} ms for another ` +
            "caller's lease; running the function here",
        );
        return this.loadUnleased(key, fn, options, undefined);
      }
      waited = true;
      await sleep(delay);
      delay = Math.min(delay * POLL_GROWTH, MAX_POLL);
    }
  }

  /** Run `fn` under the lease `cas`, write the result with it (and to the local tier). */
  private async load<T>(
    key: string,
    fn: () => T | Promise<T>,
    options: WrapOptions<T>,
    cas: string,
  ): Promise<WrapResult<T>> {
    let value: T;
    try {
      value = await fn();
    } catch (error) {
      // The next caller tries at once, rather than after the lease lapses.
      void this.store.release(this.storeKey(key), cas).catch(() => false);
      throw error;
    }
    const expires = await this.write(key, value, options, cas);
    return { value, source: 'loaded', expires };
  }

  /** No lease to be had: run `fn` here and write the result plainly (cache-manager's way). */
  private async loadUnleased<T>(
    key: string,
    fn: () => T | Promise<T>,
    options: WrapOptions<T>,
    reply: LeaseReply | undefined,
  ): Promise<WrapResult<T>> {
    if (reply?.value !== undefined) {
      const entry = await this.decode(reply.value);
      if (entry !== undefined && !expiredAt(entry, Date.now())) {
        return { value: entry.value as T, source: 'hit', expires: entry.expires ?? undefined };
      }
    }
    const value = await fn();
    const expires = await this.write(key, value, options, '');
    return { value, source: 'loaded', expires };
  }

  /** Refresh `key` in the background under the recache win `cas` (once per key at a time). */
  private refresh<T>(
    key: string,
    fn: () => T | Promise<T>,
    options: WrapOptions<T>,
    cas: string,
  ): void {
    if (this.refreshing.has(key)) return;
    this.refreshing.add(key);
    void (async () => {
      try {
        await this.write(key, await fn(), options, cas);
      } catch (error) {
        // The value stays served until it expires; then a caller takes it over.
        this.logger.warn(
          `wrap("${key}"): background refresh failed: ${error instanceof Error ? error.message : String(error)}`,
        );
      } finally {
        this.refreshing.delete(key);
      }
    })();
  }

  /**
   * Write `value` (its life: ttl plus the stale-while-revalidate window) to memcached, with `cas`
   * when it was computed under a lease, and to the local tier. Resolves to its `expires`.
   */
  private async write<T>(
    key: string,
    value: T,
    options: WrapOptions<T>,
    cas: string,
  ): Promise<number | undefined> {
    const ttl = resolveTtl(options.ttl, value) ?? this.options.ttl;
    const life = ttl > 0 ? ttl + this.options.staleWhileRevalidate : undefined;
    const expires = life === undefined ? undefined : Date.now() + life;
    const writes: Array<Promise<unknown>> = [
      cas === ''
        ? this.remote.set(key, value, life)
        : this.store.fill(
            this.storeKey(key),
            await this.remote.serialize!({ value, expires }),
            life,
            cas,
          ),
    ];
    if (this.local !== undefined) writes.push(this.local.set(key, value, life));
    await Promise.all(writes);
    return expires;
  }

  /** In the local tier too (a value memcached served, as cache-manager copies lower-tier hits). */
  private async copyToLocal(key: string, entry: Entry, now: number): Promise<void> {
    if (this.local === undefined) return;
    const ttl = typeof entry.expires === 'number' ? entry.expires - now : undefined;
    await this.local.set(key, entry.value, ttl);
  }

  /** Whether `entry` is in its refresh window (refreshThreshold / staleWhileRevalidate). */
  private inWindow<T>(entry: Entry, options: WrapOptions<T>): boolean {
    if (typeof entry.expires !== 'number') return false;
    const window = resolveTtl(options.refreshThreshold, entry.value as T) ?? this.window;
    return window > 0 && entry.expires - Date.now() <= window;
  }

  /** The serialized entry as Keyv reads it; undefined when it is not one. */
  private async decode(raw: unknown): Promise<Entry | undefined> {
    if (typeof raw !== 'string') return undefined;
    try {
      const entry = (await this.remote.deserialize!(raw)) as Entry | undefined;
      return entry !== null && typeof entry === 'object' && 'value' in entry ? entry : undefined;
    } catch {
      return undefined;
    }
  }

  /** Keyv's key for `key` (its namespace prefix), as the store receives it. */
  private storeKey(key: string): string {
    const namespace = this.remote.namespace;
    return namespace && !key.startsWith(`${namespace}:`) ? `${namespace}:${key}` : key;
  }
}

/** Where a cache whose `wrap` is a `FleetWrap` keeps it (for the interceptor's `X-Cache`). */
const FLEET_WRAP = Symbol.for('nestjs-k8s:fleet-wrap');

/** `cache.wrap` becomes `fleet`'s (same signature and result); `fleetWrapOf(cache)` finds it. */
export function useFleetWrap(cache: Cache, fleet: FleetWrap): Cache {
  cache.wrap = fleet.wrap.bind(fleet) as Cache['wrap'];
  Object.defineProperty(cache, FLEET_WRAP, { value: fleet });
  return cache;
}

/** The `FleetWrap` behind `cache.wrap`, if any. */
export function fleetWrapOf(cache: unknown): FleetWrap | undefined {
  const fleet =
    cache !== null && typeof cache === 'object'
      ? (cache as { [FLEET_WRAP]?: unknown })[FLEET_WRAP]
      : undefined;
  return fleet instanceof FleetWrap ? fleet : undefined;
}

function expiredAt(entry: Entry, now: number): boolean {
  return typeof entry.expires === 'number' && now > entry.expires;
}

function resolveTtl<T>(ttl: WrapTtl<T> | undefined, value: T): number | undefined {
  return typeof ttl === 'function' ? ttl(value) : ttl;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
