import type { Member, MemberDiff, MemberSource } from './member.js';
import { diffMembers, normalizeMembers } from './member.js';

/**
 * A member source with a list given in code: no DNS, no refresh. `set()` replaces the list and
 * notifies listeners with the diff, as a DNS change would. Failure-triggered refresh requests are
 * counted (`refreshRequests`) so callers can see that they happened.
 */
export class FixedMembers implements MemberSource {
  private list: Member[];
  private readonly listeners = new Set<(members: readonly Member[], diff: MemberDiff) => void>();
  /** How many times `requestRefresh()` was called. */
  refreshRequests = 0;
  /** The reason given to the last `requestRefresh()`. */
  lastRefreshReason: string | undefined;

  constructor(members: Iterable<Member> = []) {
    this.list = normalizeMembers(members);
  }

  /** The given list, at once. */
  start(): Promise<readonly Member[]> {
    return Promise.resolve(this.list);
  }

  /** The current list, sorted. */
  members(): readonly Member[] {
    return this.list;
  }

  /** Calls `listener` after each `set()` that changed the list; returns an unsubscribe function. */
  onChange(listener: (members: readonly Member[], diff: MemberDiff) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Replace the list; listeners hear about it when something changed. Returns the diff. */
  set(members: Iterable<Member>): MemberDiff {
    const next = normalizeMembers(members);
    const diff = diffMembers(this.list, next);
    this.list = next;
    if (diff.added.length > 0 || diff.removed.length > 0) {
      for (const listener of this.listeners) listener(next, diff);
    }
    return diff;
  }

  /** Counts the request (nothing to look up): see `refreshRequests`. */
  requestRefresh(reason: string): void {
    this.refreshRequests++;
    this.lastRefreshReason = reason;
  }

  /** Nothing to look up: resolves at once. */
  refresh(): Promise<void> {
    return Promise.resolve();
  }

  /** Forgets every listener. */
  stop(): void {
    this.listeners.clear();
  }
}
