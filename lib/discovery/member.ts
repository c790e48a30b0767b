/** One memcached server: an IP address (or name) and a port. */
export interface Member {
  readonly host: string;
  readonly port: number;
}

/** What changed between two member lists. */
export interface MemberDiff {
  readonly added: readonly Member[];
  readonly removed: readonly Member[];
}

/** `host:port`, with IPv6 literals in brackets (`[::1]:11211`). */
export function memberId(member: Member): string {
  return member.host.includes(':')
    ? `[${member.host}]:${member.port}`
    : `${member.host}:${member.port}`;
}

/** Sorted by id, duplicates dropped: the same set gives the same list whatever DNS order was. */
export function normalizeMembers(members: Iterable<Member>): Member[] {
  const byId = new Map<string, Member>();
  for (const m of members) byId.set(memberId(m), { host: m.host, port: m.port });
  return [...byId.keys()].sort().map((id) => byId.get(id)!);
}

export function diffMembers(before: readonly Member[], after: readonly Member[]): MemberDiff {
  const was = new Set(before.map(memberId));
  const now = new Set(after.map(memberId));
  return {
    added: after.filter((m) => !was.has(memberId(m))),
    removed: before.filter((m) => !now.has(memberId(m))),
  };
}

/**
 * Where the pool gets its members from. `MemberDiscovery` resolves them from DNS; a fixed list
 * (tests, a plain `host:port` list) needs no refresh at all.
 */
export interface MemberSource {
  /** First resolution. Never rejects: a failed lookup leaves the list empty and logs. */
  start(): Promise<readonly Member[]>;
  /** The current list, sorted by `memberId`. */
  members(): readonly Member[];
  /** Called after every successful lookup that changed the list. Returns an unsubscribe. */
  onChange(listener: (members: readonly Member[], diff: MemberDiff) => void): () => void;
  /** Ask for a re-resolution soon (a member failed): rate-limited and single-flight, never throws. */
  requestRefresh(reason: string): void;
  /** Re-resolve now (joins a running lookup); resolves when done, never rejects. */
  refresh(): Promise<void>;
  /** Stop timers; no lookup starts afterwards. */
  stop(): void;
}
