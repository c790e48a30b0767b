// The ring layer (lib/memcached/ring/): where keys live. `hash-ring.ts` places keys on members
// (ketama, as libmemcached does); `ring-view.ts` keeps the ring of the members that serve now and
// the one before, for warm-up. It sees members as discovery's `Member` and what the pool keeps
// per member as a type parameter: it may import protocol/ and what lies below it (discovery/,
// errors/, util/), never the pool.

import type { Member } from '../../discovery/member.js';
import { HashRing } from './hash-ring.js';

const EMPTY_RING = new HashRing<Member>([]);

/**
 * Where keys live: the ring of the members that serve now and, for warm-up, the ring before the
 * latest change of that set (kept for `warmupPeriod` ms). A change that only takes members off the
 * ring while a previous ring is kept keeps it: for every other key it still names where the value
 * is, and members off the ring are never asked. Any other change (a member added or re-admitted)
 * replaces it with the ring just before that change, with a new deadline.
 *
 * @typeParam S - what the pool keeps per member (its `MemberState`); the ring reads only `member`.
 */
export class RingView<S extends { readonly member: Member }> {
  ring = EMPTY_RING;
  /** `states[i]` owns `ring.members[i]`. */
  states: S[] = [];
  private previousRing = EMPTY_RING;
  /** `previousStates[i]` owned `previousRing.members[i]`. */
  private previousStates: S[] = [];
  /** Epoch ms until which the previous ring serves warm-up; 0 when there is none. */
  previousUntil = 0;

  constructor(
    readonly replicas: number,
    private readonly warmupPeriod: number,
    /** Still serving: in the pool, not ejected, pool open. */
    private readonly serving: (state: S) => boolean,
  ) {}

  /** Replicas or a kept previous ring: reads may go beyond the owner and writes to several. */
  spread(): boolean {
    return this.replicas > 1 || this.previousUntil !== 0;
  }

  /** Make `live` (in member order) the ring. */
  update(live: S[], keepPrevious: boolean): void {
    const before = this.states;
    const beforeRing = this.ring;
    this.states = live;
    this.ring = new HashRing(live.map((s) => s.member));
    if (this.warmupPeriod === 0 || !keepPrevious) return;
    const changed = before.length !== live.length || before.some((s, i) => s !== live[i]);
    if (!changed || before.length === 0) return;
    if (this.warmingUp() && live.every((s) => before.includes(s))) return;
    this.previousRing = beforeRing;
    this.previousStates = before;
    this.previousUntil = Date.now() + this.warmupPeriod;
  }

  /** The member owning `key` now; undefined for an empty ring. */
  owner(key: string): S | undefined {
    const index = this.ring.indexOf(key);
    return index < 0 ? undefined : this.states[index];
  }

  /**
   * The members holding a key whose ketama hash is `hashValue` now, owner first (empty for an
   * empty ring): `owners` without hashing the key again.
   */
  ownersOfHash(hashValue: number): S[] {
    const states = this.states;
    if (this.replicas === 1) {
      const index = this.ring.indexOfHash(hashValue);
      return index < 0 ? [] : [states[index]];
    }
    return this.ring.ownersOfHash(hashValue, this.replicas).map((m) => states[m]);
  }

  /** The members holding `key` now, owner first (empty for an empty ring). */
  owners(key: string): S[] {
    if (this.replicas === 1) {
      const state = this.owner(key);
      return state === undefined ? [] : [state];
    }
    const states = this.states;
    return this.ring.owners(key, this.replicas).map((m) => states[m]);
  }

  /** True while the ring before the latest change is kept; drops it once the period is over. */
  warmingUp(): boolean {
    if (this.previousUntil === 0) return false;
    if (Date.now() < this.previousUntil) return true;
    this.previousUntil = 0;
    this.previousRing = EMPTY_RING;
    this.previousStates = [];
    return false;
  }

  /**
   * The owner of `key` before the latest ring change, while warm-up lasts and only if it still
   * serves: a member known dead, ejected or removed is never asked.
   */
  previousOwner(key: string): S | undefined {
    if (!this.warmingUp()) return undefined;
    const state = this.previousStates[this.previousRing.indexOf(key)];
    return state !== undefined && this.serving(state) ? state : undefined;
  }
}
