import type { ConnectionOptions } from 'node:tls';
import type { MemcachedError, MemcachedMemberError } from '../../errors/memcached.errors.js';
import type { CommandObserver } from './command-observer.js';
import type { LinkFactory } from '../protocol/member-connection.js';
import type { MemberStats } from './member-state.js';

/** The store's policies the pool applies (the store knows generations and value envelopes). */
export interface PoolPolicy {
  /**
   * A key kept on every member (the store's generation key). memcached's `uptime` counts whole
   * seconds, so a member restarted within about a second of its ejection cannot be told from one
   * that only stalled; the probe then reads this key: a restarted member has lost it.
   */
  restartMarker?(): string;
  /**
   * The exptime to copy `value`, found away from its owner, to the owner with; undefined: do not
   * copy it (its remaining time to live is unknown). No copy at all without it.
   */
  copyExptime?(value: unknown, nowMs: number): number | undefined;
  /**
   * The pool cannot tell which keys may have a copy older than this process's last write of them
   * (its write journal forgot some: more keys written than `trackedKeys`), and the ring changed:
   * make every key unreachable (the store starts a new namespace generation).
   */
  untracked?(reason: string): void;
}

/** Options of a `MemcachedPool`; the store fills them from the cache options and their defaults. */
export interface MemcachedPoolOptions {
  /** TCP connect timeout per member, in ms. */
  connectTimeout: number;
  /** Time one command may take before it counts as a failure, in ms. */
  commandTimeout: number;
  /** Connections per member. */
  maxConnections: number;
  /** TCP_NODELAY on member connections (see `K8sCacheOptions.noDelay`). @default true */
  noDelay?: boolean;
  /**
   * `'auto'`: meta commands with members that speak them (1.6.10+), text with the others;
   * `'text'`: text commands only. @default 'auto'
   */
  protocol?: 'auto' | 'text';
  /**
   * Multi-gets as meta commands where the member has them (so they see values marked stale);
   * off: text `get`, cheaper per key. @default false
   */
  metaMultiGet?: boolean;
  /** `tls.connect` options for every member connection and probe; undefined: plaintext. */
  tls?: ConnectionOptions;
  /** Time every command into per-member latency buckets (`MemberStats.latency`). @default false */
  collectTimings?: boolean;
  /** Consecutive failures that break a member after which it leaves the ring. */
  failureLimit: number;
  /**
   * The members are endpoints in front of a fleet (ElastiCache Serverless, mcrouter, twemproxy):
   * a failing member is never ejected (its keys have nowhere else to go: ejection would empty
   * the cache), and after a connection failure its next connection waits a bounded, growing
   * back-off (`reconnectWithBackoff`) while commands fail at once rather than each trying to
   * connect.
   * @default false
   */
  endpointMode?: boolean;
  /**
   * How long an ejected member stays out of the ring, in ms (doubling, up to 16 times, while it
   * keeps failing soon after each readmission); then it is probed and re-admitted only if it
   * answers a real round trip.
   */
  retryTimeout: number;
  /**
   * How long the ring before a membership change is kept for warm-up, in ms; 0 (the default)
   * turns warm-up off. See `MemcachedPool`.
   */
  warmupPeriod?: number;
  /** Members holding each key: the owner and the next distinct members clockwise. @default 1 */
  replicas?: number;
  /**
   * Keys whose latest write this process remembers, to clear older copies when the ring changes
   * (see `StaleCopyGuard`). @default 100000
   */
  trackedKeys?: number;
  /** Largest value sent or read, in bytes: a larger one is refused, or read as a miss. @default 1 MiB */
  maxValueSize?: number;
  /** Sees every command sent to a member (telemetry). @default none */
  commandObserver?: CommandObserver;
  /** The store's policies. @default none: no copies, no restart marker, stale members admitted */
  policy?: PoolPolicy;
  /** Makes the link to each member (unit specs pass in-memory members). @default memcached over TCP/TLS */
  createLink?: LinkFactory;
}

/** Counters of the pool. */
export interface PoolStats {
  readonly members: MemberStats[];
  /** Members currently on the ring (not ejected), sorted. */
  readonly ring: string[];
  readonly totals: {
    ops: number;
    hits: number;
    misses: number;
    errors: number;
    ejections: number;
    readmissions: number;
  };
  /** Keys whose latest write this process remembers now (at most `trackedKeys`). */
  readonly trackedKeys: number;
  /** Keys deleted on a new owner at ring changes because it might have held an older copy. */
  readonly invalidations: number;
}

/** One entry of `setMany`. */
export interface PoolEntry {
  readonly key: string;
  readonly value: unknown;
  /** Memcached exptime (see `toExptime`). */
  readonly exptime: number;
}

/** The pool's events and their arguments. */
export interface PoolEvents {
  /** An operation failed (the pool itself never rejects); not for commands the pool cut short. */
  failure: [error: MemcachedError];
  /** A member failed in a way that breaks it: the member list may be stale. */
  memberFailure: [member: string, error: MemcachedError];
  eject: [member: string, error: MemcachedMemberError];
  /**
   * `stale`: it kept entries while this process wrote elsewhere (those keys are cleared on it
   * before they are read there).
   */
  readmit: [member: string, stale: boolean];
  /** The write journal cannot cover a ring change (see `PoolPolicy.untracked`). */
  untracked: [reason: string];
}
