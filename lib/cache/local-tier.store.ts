import type { KeyvStoreAdapter, StoredData } from 'keyv';
import { TypedEventEmitter } from '../util/typed-events.js';
import type { ResolvedLocalCacheOptions } from '../options/local-cache-options.js';

/** The tier never fails, so it emits nothing; `error` is declared because Keyv subscribes to it. */
export interface LocalTierStoreEvents {
  error: [error: unknown];
}

interface LocalEntry {
  value: unknown;
  /** Date.now() after which the entry is gone: the entry's own ttl, capped at `local.ttl`. */
  expiresAt: number;
}

/**
 * The in-process first tier (`cache.local`): a Keyv storage adapter over a bounded LRU. Every
 * entry lives at most `ttl` ms, whatever ttl the cache gives it, which bounds how long a value
 * another pod changed can be served from here. In front of memcached it serves hits only while
 * memcached's namespace generation is confirmed, and is emptied when that generation changes, so
 * another pod's `clear()` reaches it as it reaches memcached reads. Keyv hands it serialized
 * entries, so each hit is a fresh copy (a caller mutating what it got cannot change what the
 * next caller gets).
 */
export class LocalTierStore
  extends TypedEventEmitter<LocalTierStoreEvents>
  implements KeyvStoreAdapter
{
  /** Read by Keyv. */
  opts: ResolvedLocalCacheOptions & { dialect: 'local' };
  /** Set by Keyv; the tier belongs to one Keyv, so it holds one namespace. */
  namespace: string | undefined;

  // A Map iterates in insertion order: re-inserting on each hit keeps the least recently used first.
  private readonly entries = new Map<string, LocalEntry>();

  /**
   * @param upstreamCurrent false while the tier behind this one must be asked first (memcached's
   *   namespace generation is unconfirmed): a hit is then a miss, so the read goes through and
   *   another pod's `clear()` is seen.
   */
  constructor(
    options: ResolvedLocalCacheOptions,
    private readonly upstreamCurrent: () => boolean = () => true,
  ) {
    super();
    this.opts = { ...options, dialect: 'local' };
  }

  /** Entries held now (expired ones included until they are read or pushed out). */
  get size(): number {
    return this.entries.size;
  }

  async get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    const entry = this.entries.get(key);
    if (entry === undefined || !this.upstreamCurrent()) return undefined;
    this.entries.delete(key);
    if (Date.now() >= entry.expiresAt) return undefined;
    this.entries.set(key, entry);
    return entry.value as StoredData<Value>;
  }

  async getMany<Value>(keys: string[]): Promise<Array<StoredData<Value | undefined>>> {
    return Promise.all(keys.map((key) => this.get<Value>(key)));
  }

  /** `ttl` in ms as Keyv passes it (undefined: no expiry of its own); capped at `local.ttl`. */
  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const life = ttl !== undefined && ttl > 0 ? Math.min(ttl, this.opts.ttl) : this.opts.ttl;
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: Date.now() + life });
    while (this.entries.size > this.opts.max) {
      this.entries.delete(this.entries.keys().next().value as string);
    }
    return true;
  }

  async delete(key: string): Promise<boolean> {
    return this.entries.delete(key);
  }

  async deleteMany(keys: string[]): Promise<boolean> {
    let deleted = false;
    for (const key of keys) deleted = this.entries.delete(key) || deleted;
    return deleted;
  }

  async has(key: string): Promise<boolean> {
    const entry = this.entries.get(key);
    return entry !== undefined && Date.now() < entry.expiresAt;
  }

  async clear(): Promise<void> {
    this.entries.clear();
  }

  async disconnect(): Promise<void> {
    this.entries.clear();
  }
}
