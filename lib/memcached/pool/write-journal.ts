/**
 * Where this process last wrote (or deleted) each key, and which other members it has since
 * cleared of older copies: the bounded memory behind "no read returns a value older than the last
 * acknowledged write" when members come and go.
 *
 * A key's value lives on the member that owned it when it was written. When the ring changes, a
 * key can get an owner that holds an older copy of it: a member that was out while the key was
 * rewritten elsewhere (a flap, an ejection that ended), or the previous owner of a key whose
 * newer owner left (a member that joined and left, or crashed, came back empty and crashed
 * again). For every key in the journal whose owner after the change is not a member known to
 * hold nothing older than the latest write, the pool deletes the key on that owner before
 * serving it there (`StaleCopyGuard`). The journal holds the `capacity` most recently written
 * keys; when it had to forget one, the pool cannot tell which keys are safe and falls back to
 * making every key unreachable (the store's new namespace generation): `forgot` says so.
 *
 * Members are named by id (`host:port`), not by the pool's state object: a member that leaves
 * the member list and comes back holds what was written to it before, so a key whose latest write
 * is there needs no clearing on its return. Each entry keeps the key's ketama hash, so a ring
 * change places every key again without hashing it.
 *
 * @typeParam S - how the pool names a member.
 */
export class WriteJournal<S> {
  /** In order of last write, oldest first. */
  private readonly entries = new Map<string, JournalEntry<S>>();
  private forgotten = false;

  /** @param capacity keys remembered; 0 remembers none (every ring change then falls back). */
  constructor(readonly capacity: number) {}

  /** Keys remembered now. */
  get size(): number {
    return this.entries.size;
  }

  /** True when a key was pushed out (or none could be kept) since the last `reset()`. */
  get forgot(): boolean {
    return this.forgotten;
  }

  /**
   * `key` (ketama hash `hash`, NaN when unknown) was written or deleted on `at`: the only
   * member(s) known to hold its latest state.
   */
  record(key: string, at: S | S[], hash: number): void {
    const entries = this.entries;
    const entry = entries.get(key);
    if (entry !== undefined) {
      // Moved to the end: the map stays in order of last write. The entry object is reused.
      entries.delete(key);
      entry.at = at;
      if (hash === hash) entry.hash = hash;
      entries.set(key, entry);
      return;
    }
    if (entries.size >= this.capacity) {
      this.forgotten = true;
      if (this.capacity === 0) return;
      entries.delete(entries.keys().next().value as string);
    }
    entries.set(key, { at, hash });
  }

  /** Every key and its entry, oldest write first (for `StaleCopyGuard`'s scan). */
  [Symbol.iterator](): IterableIterator<[string, JournalEntry<S>]> {
    return this.entries[Symbol.iterator]();
  }

  /** `member` is no longer known to be clean of `key` (clearing it there failed). */
  unmark(key: string, member: S): void {
    const entry = this.entries.get(key);
    if (entry === undefined || !Array.isArray(entry.at) || !entry.at.includes(member)) return;
    const rest = entry.at.filter((m) => m !== member);
    entry.at = rest.length === 1 ? rest[0] : rest;
  }

  /** Forget every key (every value was made unreachable). */
  reset(): void {
    this.entries.clear();
    this.forgotten = false;
  }
}

/** What the journal keeps of one key. */
export interface JournalEntry<S> {
  /**
   * The member(s) holding its latest write, then those cleared of older copies since; one member
   * is kept as is (the common case: no array on the write path).
   */
  at: S | S[];
  /** Its ketama hash; NaN until known (a one-member ring hashes nothing). */
  hash: number;
}
