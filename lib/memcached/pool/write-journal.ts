/**
 * Where this process last wrote (or deleted) each key, and which other members it has since
 * cleared of older copies: the bounded memory behind "no read returns a value older than the last
 * acknowledged write" when members come and go.
 *
 * A key's value lives on the member that owned it when it was written. When the ring changes, a
 * key can get an owner that holds an older copy of it: a member that was out while the key was
 * rewritten elsewhere (a flap, an ejection that ended), or the previous owner of a key whose
 * newer owner left (a member that joined and left, or crashed again). For every key in the
 * journal whose owner after the change is not a member known to hold nothing older than the
 * latest write, the pool deletes the key on that owner before serving it there
 * (`MemcachedPool`). The journal holds the `capacity` most recently written keys; when it had
 * to forget one, the pool cannot tell which keys are safe and falls back to making every key
 * unreachable (the store's new namespace generation): `forgot` says so.
 *
 * Members are named by id (`host:port`), not by the pool's state object: a member that leaves
 * the member list and comes back holds what was written to it before, so a key whose latest write
 * is there needs no clearing on its return.
 *
 * @typeParam S - how the pool names a member.
 */
export class WriteJournal<S> {
  /**
   * Key → the member(s) holding its latest write, plus those cleared of it since. One member is
   * kept as is (the common case, no array on the write path).
   */
  private readonly entries = new Map<string, S | S[]>();
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

  /** `key` was written (or deleted) on `at`: the only member(s) known to hold its latest state. */
  record(key: string, at: S | S[]): void {
    const entries = this.entries;
    // Re-inserted at the end: the map stays in order of last write, oldest first.
    if (!entries.delete(key) && entries.size >= this.capacity) {
      this.forgotten = true;
      if (this.capacity === 0) return;
      entries.delete(entries.keys().next().value as string);
    }
    entries.set(key, at);
  }

  /**
   * The keys whose owners (as `ownersOf` gives them now) are not all known to be clean, grouped
   * by the owner to clear them on. Those owners count as clean from now on: the caller deletes
   * the keys there before it serves them.
   */
  unclean(ownersOf: (key: string) => readonly S[]): Map<S, string[]> {
    const found = new Map<S, string[]>();
    for (const [key, at] of this.entries) {
      const owners = ownersOf(key);
      let clean: S | S[] = at;
      for (let i = 0; i < owners.length; i++) {
        const owner = owners[i];
        if (owner === at || (Array.isArray(at) && at.includes(owner))) continue;
        let keys = found.get(owner);
        if (keys === undefined) found.set(owner, (keys = []));
        keys.push(key);
        clean = Array.isArray(clean) ? [...clean, owner] : [clean, owner];
      }
      if (clean !== at) this.entries.set(key, clean);
    }
    return found;
  }

  /** `member` is no longer known to be clean of `key` (clearing it there failed). */
  unmark(key: string, member: S): void {
    const at = this.entries.get(key);
    if (!Array.isArray(at) || !at.includes(member)) return;
    const rest = at.filter((m) => m !== member);
    this.entries.set(key, rest.length === 1 ? rest[0] : rest);
  }

  /** Forget every key (every value was made unreachable). */
  reset(): void {
    this.entries.clear();
    this.forgotten = false;
  }
}
