import type { Member } from '../../discovery/member.js';
import type { HashRing } from '../ring/hash-ring.js';
import type { MemberCommands } from './member-commands.js';
import { FAILED } from './member-commands.js';
import type { MemberState } from './member-state.js';
import type { RingView } from '../ring/ring-view.js';

/** Keys per multi-get command: keeps command lines short whatever the caller passes. */
export const MULTI_GET_CHUNK = 100;

/**
 * Reads beyond a key's owner after it missed or failed: its replicas (`replicas` > 1), then, during
 * warm-up, its owner before the latest ring change. A value found away from an owner that answered
 * is copied to it with `add` (never overwriting a value written meanwhile) and the exptime
 * `copyExptime` allows, in the background.
 */
export class FallbackReads {
  constructor(
    private readonly view: RingView<MemberState>,
    private readonly commands: MemberCommands,
    private readonly serving: (state: MemberState) => boolean,
    private readonly copyExptime:
      ((value: unknown, nowMs: number) => number | undefined) | undefined,
  ) {}

  /** `key` after a miss (`ownerAnswered`) or failure at `owner`; undefined when found nowhere. */
  async get(key: string, owner: MemberState, ownerAnswered: boolean): Promise<unknown> {
    const asked = [owner];
    if (this.view.replicas > 1) {
      for (const state of this.view.owners(key)) {
        if (asked.includes(state) || !this.serving(state)) continue;
        asked.push(state);
        const found = await this.commands.get(state, key, 'replica');
        if (found !== undefined && found !== FAILED) {
          state.replicaReads++;
          if (ownerAnswered && this.view.warmingUp()) this.copyTo(owner, key, found);
          return found;
        }
      }
    }
    const previous = this.view.previousOwner(key);
    if (previous === undefined || asked.includes(previous)) return undefined;
    const found = await this.commands.get(previous, key, 'warmup');
    if (found === FAILED || found === undefined) return undefined;
    if (ownerAnswered) this.copyTo(owner, key, found);
    return found;
  }

  /**
   * `get` for the keys of a multi-get still missing in `values`: one more set of reads per
   * replica, then one to the previous owners, each one batch per member.
   */
  async getMany(
    keys: readonly string[],
    values: unknown[],
    ring: HashRing<Member>,
    states: readonly MemberState[],
  ): Promise<void> {
    let missing: number[] = [];
    for (let i = 0; i < values.length; i++) if (values[i] === undefined) missing.push(i);
    if (missing.length === 0) return;
    const replicas = this.view.replicas;
    const owners = missing.map((i) => ring.owners(keys[i], replicas).map((m) => states[m]));
    for (let r = 1; r < replicas; r++) {
      const targets = owners.map((list) => list[r]);
      const asked = await this.getMissingFrom(keys, values, missing, targets, 'replica');
      missing = this.keepMissing(keys, values, missing, owners, asked, true);
    }
    if (missing.length === 0 || !this.view.warmingUp()) return;
    const previous = missing.map((i, j) => {
      const state = this.view.previousOwner(keys[i]);
      return state !== undefined && !owners[j].includes(state) ? state : undefined;
    });
    const asked = await this.getMissingFrom(keys, values, missing, previous, 'warmup');
    this.keepMissing(keys, values, missing, owners, asked, false);
  }

  /**
   * Ask `targets[j]` for `keys[missing[j]]`, one batch per member and chunk; targets undefined or
   * no longer serving are skipped. Resolves to the targets asked.
   */
  private async getMissingFrom(
    keys: readonly string[],
    values: unknown[],
    missing: readonly number[],
    targets: ReadonlyArray<MemberState | undefined>,
    reason: 'replica' | 'warmup',
  ): Promise<ReadonlyArray<MemberState | undefined>> {
    const groups = new Map<MemberState, number[]>();
    const asked = targets.map((state, j) => {
      if (state === undefined || !this.serving(state)) return undefined;
      let group = groups.get(state);
      if (group === undefined) groups.set(state, (group = []));
      group.push(missing[j]);
      return state;
    });
    const pending: Promise<void>[] = [];
    for (const [state, indexes] of groups) {
      for (let start = 0; start < indexes.length; start += MULTI_GET_CHUNK) {
        const chunk = indexes.slice(start, start + MULTI_GET_CHUNK);
        pending.push(this.commands.getBatch(state, keys, chunk, values, reason));
      }
    }
    await Promise.all(pending);
    return asked;
  }

  /** Count and copy what `getMissingFrom` found; the indexes still missing (`owners` kept in step). */
  private keepMissing(
    keys: readonly string[],
    values: unknown[],
    missing: number[],
    owners: MemberState[][],
    asked: ReadonlyArray<MemberState | undefined>,
    fromReplicas: boolean,
  ): number[] {
    const still: number[] = [];
    const stillOwners: MemberState[][] = [];
    const copy = this.view.warmingUp();
    for (let j = 0; j < missing.length; j++) {
      const i = missing[j];
      const from = asked[j];
      if (values[i] === undefined || from === undefined) {
        still.push(i);
        stillOwners.push(owners[j]);
        continue;
      }
      if (fromReplicas) from.replicaReads++;
      if (copy && this.serving(owners[j][0])) this.copyTo(owners[j][0], keys[i], values[i]);
    }
    owners.splice(0, owners.length, ...stillOwners);
    return still;
  }

  /** Copy a value found away from `owner` to it, in the background. */
  private copyTo(owner: MemberState, key: string, value: unknown): void {
    if (typeof value !== 'string' || !this.serving(owner)) return;
    const exptime = this.copyExptime?.(value, Date.now());
    if (exptime === undefined) return;
    void this.commands.add(owner, key, value, exptime, 'copy').then((stored) => {
      if (stored) owner.warmupCopies++;
    });
  }
}
