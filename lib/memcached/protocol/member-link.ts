import type { ConnectionOptions } from 'node:tls';
import type { Member } from '../../discovery/member.js';

/** How to reach the members. */
export interface MemberConnectionOptions {
  /** TCP connect timeout, in ms. */
  readonly connectTimeout: number;
  /** Time one command may take before the connection is closed and its commands fail, in ms. */
  readonly commandTimeout: number;
  /** Connections to the member. */
  readonly maxConnections: number;
  /** TCP_NODELAY. */
  readonly noDelay: boolean;
  /** `tls.connect` options; undefined: plaintext. */
  readonly tls?: ConnectionOptions;
  /**
   * Largest value sent or read, in bytes of what goes over the wire: a larger value is refused
   * before it is sent (`MemcachedValueTooLargeError`), a larger one read is skipped as a miss.
   */
  readonly maxValueSize: number;
  /**
   * `'auto'`: each connection asks `version` and `mn` first and speaks the meta protocol when the
   * member has it (1.6.10+), text commands otherwise; `'text'`: text commands only.
   * @default 'auto'
   */
  readonly protocol?: 'auto' | 'text';
  /**
   * Multi-gets as a quiet `mg` pipeline on members of the meta protocol, which sees values marked
   * stale (`staleOnDelete`); otherwise one text `get`, about 10 % less CPU per key (`npm run
   * bench`). Single gets go as `mg` either way (no slower than `get`).
   * @default false
   */
  readonly metaMultiGet?: boolean;
}

/** What a connection tells its owner, besides the outcome of each command. */
export interface MemberConnectionEvents {
  /** Values read with another key's check (they read as misses). */
  keyMismatch(count: number): void;
  /** Values over `maxValueSize`, skipped unread (they read as misses). */
  oversized(count: number): void;
  /** A reply broke the protocol: the connection was closed. */
  protocolError(): void;
}

/** A store command's outcome that is not an error: memcached's status word. */
export type StoreStatus = 'STORED' | 'NOT_STORED' | 'EXISTS' | 'NOT_FOUND';

/**
 * What a lease read found (`MemberLink.lease`). With the meta protocol one caller fleet-wide wins
 * the right to compute a missing key (`win` on a `placeholder`), or to refresh a value due for it
 * (`win` on a value: its recache window began, or it was marked `stale`); the others see
 * `pending` until the winner writes or the lease lapses.
 */
export interface LeaseReply {
  /** The value (undefined: a miss, a placeholder, or a value that reads as a miss). */
  readonly value: unknown;
  /** This caller holds the lease (memcached's W). */
  readonly win: boolean;
  /** Another caller holds it (Z). */
  readonly pending: boolean;
  /** The value was marked stale by an invalidation (X). */
  readonly stale: boolean;
  /** No value yet: the item is a lease's placeholder. */
  readonly placeholder: boolean;
  /** The item's CAS, to write the computed value only if nothing changed it ('' on a miss). */
  readonly cas: string;
  /** The item's remaining time to live in seconds, -1 for none, -2 on a miss. */
  readonly ttl: number;
  /** false: the member speaks text commands only: no lease, a miss is just a miss. */
  readonly leased: boolean;
}

/**
 * The commands the pool sends one member: the seam between the pool and the network
 * (`MemberConnection`; unit specs put an in-memory member there). Rejections carry a
 * `MemcachedMemberError` (connection, protocol) or a `MemcachedReplyError` (an error reply).
 */
export interface MemberLink {
  get(key: string): Promise<unknown>;
  getMany(keys: readonly string[]): Promise<unknown[]>;
  store(verb: 'set' | 'add', key: string, value: unknown, exptime: number): Promise<StoreStatus>;
  delete(key: string): Promise<boolean>;
  stats(): Promise<Array<[string, string]>>;
  close(): void;
  // The lease commands: a link without them is a member of the text protocol (see `leaseOn` …).
  /** `'meta'` or `'text'` once a connection learned it; undefined before. */
  readonly protocol?: 'meta' | 'text' | undefined;
  /**
   * Read `key` for `wrap`: on a miss, take a lease of `leaseSeconds` (0: none); a value with less
   * than `recacheSeconds` to live (0: never) gives one caller the right to refresh it.
   */
  lease?(key: string, leaseSeconds: number, recacheSeconds: number): Promise<LeaseReply>;
  /** `set` only if the item's CAS is still `cas` (a lease or recache win); `cas` '': a plain set. */
  fill?(key: string, value: unknown, exptime: number, cas: string): Promise<StoreStatus>;
  /**
   * Mark `key` stale for `seconds` instead of deleting it (a lease read then serves it while one
   * caller recomputes it); a plain delete without the meta protocol. True when it existed.
   */
  markStale?(key: string, seconds: number): Promise<boolean>;
  /**
   * Delete `key` only if its CAS is still `cas`: a lease holder that could not compute gives its
   * lease back, so the next caller tries at once. False without the meta protocol.
   */
  release?(key: string, cas: string): Promise<boolean>;
}

/** What a lease read is without the meta protocol: a plain read, no lease. */
export function unleased(value: unknown): LeaseReply {
  return {
    value,
    win: false,
    pending: false,
    stale: false,
    placeholder: false,
    cas: '',
    ttl: value === undefined ? -2 : -1,
    leased: false,
  };
}

/** `link.lease`, or a plain read on a link without it. */
export function leaseOn(
  link: MemberLink,
  key: string,
  leaseSeconds: number,
  recacheSeconds: number,
): Promise<LeaseReply> {
  return link.lease ? link.lease(key, leaseSeconds, recacheSeconds) : link.get(key).then(unleased);
}

/** `link.fill`, or a plain set on a link without it. */
export function fillOn(
  link: MemberLink,
  key: string,
  value: unknown,
  exptime: number,
  cas: string,
): Promise<StoreStatus> {
  return link.fill ? link.fill(key, value, exptime, cas) : link.store('set', key, value, exptime);
}

/** `link.markStale`, or a plain delete on a link without it. */
export function markStaleOn(link: MemberLink, key: string, seconds: number): Promise<boolean> {
  return link.markStale ? link.markStale(key, seconds) : link.delete(key);
}

/** `link.release`, or nothing to give back on a link without it. */
export function releaseOn(link: MemberLink, key: string, cas: string): Promise<boolean> {
  return link.release ? link.release(key, cas) : Promise.resolve(false);
}

/** Makes the link to a member (tests pass their own). */
export type LinkFactory = (
  member: Member,
  options: MemberConnectionOptions,
  events: MemberConnectionEvents,
) => MemberLink;
