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
}

/** Makes the link to a member (tests pass their own). */
export type LinkFactory = (
  member: Member,
  options: MemberConnectionOptions,
  events: MemberConnectionEvents,
) => MemberLink;
