/**
 * One memcached server: an IP address (or name) and a port. `host` is its identity (ring position,
 * stats, `servers()`); `address`, when given, is where to connect instead (ElastiCache names each
 * node by a hostname that stays while its IP can change: the key placement must not move).
 */
export interface Member {
  readonly host: string;
  readonly port: number;
  /** The IP to connect to, when it differs from `host`. @default host */
  readonly address?: string;
}

/** What changed between two member lists. */
export interface MemberDiff {
  readonly added: readonly Member[];
  readonly removed: readonly Member[];
  /**
   * Members that stayed (same `host:port`) but are now reached at another `address` (an
   * ElastiCache node whose IP changed), as they are now: their keys stay, their connection moves.
   * Absent when there are none (so a DNS diff reads as it always did).
   */
  readonly changed?: readonly Member[];
}

/** `host:port`, with IPv6 literals in brackets (`[::1]:11211`). */
export function memberId(member: Member): string {
  return member.host.includes(':')
    ? `[${member.host}]:${member.port}`
    : `${member.host}:${member.port}`;
}

/** Where to connect to `member`: its `address`, else its `host`. */
export function memberAddress(member: Member): string {
  return member.address ?? member.host;
}

/**
 * Sorted by id, duplicates dropped (the last one given wins): the same set gives the same list
 * whatever DNS order was. An `address` equal to `host` is dropped, as it says nothing.
 */
export function normalizeMembers(members: Iterable<Member>): Member[] {
  const byId = new Map<string, Member>();
  for (const { host, port, address } of members) {
    byId.set(
      memberId({ host, port }),
      address === undefined || address === host ? { host, port } : { host, port, address },
    );
  }
  return [...byId.keys()].sort().map((id) => byId.get(id)!);
}

/**
 * Members of `after` not in `before` (`added`), of `before` not in `after` (`removed`), and in
 * both but reached at another address (`changed`, as in `after`; left out when none).
 */
export function diffMembers(before: readonly Member[], after: readonly Member[]): MemberDiff {
  const was = new Map(before.map((m) => [memberId(m), m]));
  const now = new Set(after.map(memberId));
  const added: Member[] = [];
  const changed: Member[] = [];
  for (const m of after) {
    const old = was.get(memberId(m));
    if (old === undefined) added.push(m);
    else if (memberAddress(old) !== memberAddress(m)) changed.push(m);
  }
  const removed = before.filter((m) => !now.has(memberId(m)));
  return changed.length > 0 ? { added, removed, changed } : { added, removed };
}

/** True when `diff` changes anything. */
export function isEmptyDiff(diff: MemberDiff): boolean {
  return diff.added.length === 0 && diff.removed.length === 0 && !diff.changed?.length;
}

/** What a health check can read about how member discovery is doing. */
export interface DiscoveryStats {
  /** False while the latest lookup failed; true before the first lookup and after a success. */
  readonly healthy: boolean;
  /** Lookups done (each resolves every DNS item of `host` once). */
  readonly lookups: number;
  /** Lookups in which some item failed, timed out or answered nothing. */
  readonly failures: number;
  /** `lookups` by what started them (sources that do not keep it leave it out). */
  readonly lookupsByReason?: Readonly<Record<LookupReason, number>>;
  /** Why the latest failed lookup failed. */
  readonly lastError?: string;
  /** When a lookup last failed (epoch ms). */
  readonly lastErrorAt?: number;
  /** When a lookup last fully succeeded (epoch ms). */
  readonly lastSuccessAt?: number;
  /** Current members as `host:port`, sorted. */
  readonly members: readonly string[];
  /** ElastiCache and Memorystore only: the configuration version of the current list. */
  readonly configVersion?: number;
  /** ElastiCache and Memorystore only: answers ignored because their configuration version went back. */
  readonly staleConfigs?: number;
}

/**
 * What started a lookup: the first one (`start`), the periodic timer (`periodic`), a member
 * failing at the connection level (`failure`) or a `refresh()` call (`manual`).
 */
export type LookupReason = 'start' | 'periodic' | 'failure' | 'manual';

/** One finished lookup, as the store's `refresh` event reports it. */
export interface LookupResult {
  readonly reason: LookupReason;
  /** Members after the lookup (a failed lookup keeps the previous ones). */
  readonly members: number;
  /** How long the lookup took, in ms. */
  readonly durationMs: number;
  /** Why it failed; undefined when every DNS item answered. */
  readonly error?: string;
}

/**
 * Where the pool gets its members from. `MemberDiscovery` resolves them from DNS,
 * `ElastiCacheDiscovery` and `MemorystoreDiscovery` ask a configuration endpoint; a fixed list
 * (tests, one endpoint in front of a fleet) needs no refresh at all.
 */
export interface MemberSource {
  /** First resolution. Never rejects: a failed lookup leaves the list empty and logs. */
  start(): Promise<readonly Member[]>;
  /** The current list, sorted by `memberId`. */
  members(): readonly Member[];
  /**
   * Called after every successful lookup that changed the list (a member added or removed, or
   * reached at another `address`). Returns an unsubscribe.
   */
  onChange(listener: (members: readonly Member[], diff: MemberDiff) => void): () => void;
  /** Ask for a re-resolution soon (a member failed): rate-limited and single-flight, never throws. */
  requestRefresh(reason: string): void;
  /**
   * Re-resolve now; resolves, never rejects, once a lookup that began after this call has ended
   * (calls made together share one lookup).
   */
  refresh(): Promise<void>;
  /** Stop timers; no lookup starts afterwards. */
  stop(): void;
  /** How discovery is doing, for health checks; a fixed list has nothing to report. */
  stats?(): DiscoveryStats;
  /** Called after every lookup, changed or not, failed or not. Returns an unsubscribe. */
  onLookup?(listener: (result: LookupResult) => void): () => void;
}
