import { ketamaHash } from '../ring/hash-ring.js';
import type { Failed } from './member-commands.js';
import { FAILED } from './member-commands.js';
import { WriteJournal } from './write-journal.js';

/** What the guard needs from the pool. */
export interface StaleCopyHost<S extends { readonly id: string }> {
  /** The members holding a key of ketama hash `hash` on the ring now, owner first. */
  ownersOfHash(hash: number): readonly S[];
  /** On the ring now (an invalidation to a member that is not is pointless). */
  serving(state: S): boolean;
  /** Delete `key` on `state`; FAILED when the command failed (the failure was reported). */
  remove(state: S, key: string): Promise<boolean | Failed>;
  /**
   * The guard cannot tell which keys may have a stale copy (its journal forgot some, or an
   * invalidation failed on a member that still serves): make every key unreachable.
   */
  untracked(reason: string): void;
}

/**
 * Keeps this process from reading a value older than its own last write of a key when the ring
 * changes. Writes are recorded in a bounded `WriteJournal`; at every ring change the keys whose
 * new owner may hold an older copy are deleted there, and until that delete is done, reads and
 * writes of those keys wait for it (one round trip, only for those keys). See `WriteJournal`.
 */
export class StaleCopyGuard<S extends { readonly id: string }> {
  private readonly journal: WriteJournal<string>;
  /** Keys being cleared on their new owner, and when that is done. */
  private readonly pending = new Map<string, Promise<void>>();
  /** Keys cleared at ring changes (for stats and tests). */
  invalidations = 0;

  constructor(
    capacity: number,
    private readonly host: StaleCopyHost<S>,
  ) {
    this.journal = new WriteJournal<string>(capacity);
  }

  /** Keys remembered now. */
  get tracked(): number {
    return this.journal.size;
  }

  /**
   * `key` was written or deleted on `at` (its owners now); `hash` is its ketama hash, NaN when
   * the ring computed none.
   */
  written(key: string, at: S | readonly S[], hash: number): void {
    if ('id' in at) this.journal.record(key, at.id, hash);
    else this.journal.record(key, at.length === 1 ? at[0].id : at.map((s) => s.id), hash);
  }

  /** The clearing `key` waits for, if any: read or write it only after that. */
  waitFor(key: string): Promise<void> | undefined {
    return this.pending.size === 0 ? undefined : this.pending.get(key);
  }

  /** The clearings any of `keys` waits for (none: an empty array). */
  waitForAny(keys: readonly string[]): Array<Promise<void>> {
    if (this.pending.size === 0) return [];
    const waits = new Set<Promise<void>>();
    for (const key of keys) {
      const wait = this.pending.get(key);
      if (wait !== undefined) waits.add(wait);
    }
    return [...waits];
  }

  /** Forget every write (every key was made unreachable: a new namespace generation). */
  reset(): void {
    this.journal.reset();
  }

  /** The ring changed: clear every remembered key on any new owner that may hold it older. */
  ringChanged(): void {
    if (this.journal.forgot) {
      const size = this.journal.capacity;
      this.journal.reset();
      this.host.untracked(
        `more keys were written than the ${size} it remembers (cache.trackedKeys)`,
      );
      return;
    }
    const unclean = new Map<S, string[]>();
    for (const [key, entry] of this.journal) {
      if (entry.hash !== entry.hash) entry.hash = ketamaHash(key);
      const owners = this.host.ownersOfHash(entry.hash);
      for (let i = 0; i < owners.length; i++) {
        const owner = owners[i];
        const at = entry.at;
        if (at === owner.id || (Array.isArray(at) && at.includes(owner.id))) continue;
        // Clear it there (below); from then on that owner holds nothing older either.
        let keys = unclean.get(owner);
        if (keys === undefined) unclean.set(owner, (keys = []));
        keys.push(key);
        entry.at = Array.isArray(at) ? [...at, owner.id] : [at, owner.id];
      }
    }
    for (const [owner, keys] of unclean) this.clear(owner, keys);
  }

  private clear(state: S, keys: readonly string[]): void {
    this.invalidations += keys.length;
    const done = Promise.all(keys.map((key) => this.host.remove(state, key))).then((results) => {
      for (const key of keys) if (this.pending.get(key) === done) this.pending.delete(key);
      if (!results.includes(FAILED)) return;
      if (this.host.serving(state)) {
        // It failed a delete and still serves: it may hand out an old copy.
        this.journal.reset();
        this.host.untracked(`clearing overwritten keys on memcached member ${state.id} failed`);
        return;
      }
      // Out of the ring: cleared again when it is back.
      keys.forEach((key, i) => results[i] === FAILED && this.journal.unmark(key, state.id));
    });
    for (const key of keys) this.pending.set(key, done);
  }
}
