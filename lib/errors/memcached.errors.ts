import { K8sError } from './k8s.error.js';

/** Base class of the errors the memcached store reports (through `error` events, never thrown to callers). */
export class MemcachedError extends K8sError {}

/**
 * A member failed at the connection level (refused, reset, closed, timed out). It counts towards
 * the member's ejection and triggers a re-resolution of the member list.
 */
export class MemcachedMemberError extends MemcachedError {
  constructor(
    /** `host:port` of the member. */
    readonly member: string,
    cause: unknown,
    message = `memcached member ${member} failed (${describe(cause)}); the operation counts as a miss. ` +
      'If this persists, check that the memcached pod is running and reachable.',
  ) {
    super(message, { cause });
  }
}

/**
 * A member failed the TLS handshake (untrusted certificate, name mismatch, a member without TLS).
 * It counts like any connection failure: the member is ejected, and never reached in plaintext.
 */
export class MemcachedTlsError extends MemcachedMemberError {
  constructor(member: string, cause: unknown) {
    super(
      member,
      cause,
      `memcached member ${member} failed the TLS handshake (${describe(cause)}); the operation ` +
        'counts as a miss and the member is treated as down (it is never used in plaintext). ' +
        "Check cache.tls: ca must hold the CA that signed the member's certificate, the " +
        "certificate must name the member's IP or cache.tls.servername, and memcached must run " +
        'with -Z.',
    );
  }
}

/**
 * A member sent a reply no well-behaved memcached sends (an unknown line, a reply nobody asked
 * for, a value of impossible length or for another key): its connection is closed, the commands
 * in flight on it read as misses, and it counts towards the member's ejection.
 */
export class MemcachedProtocolError extends MemcachedMemberError {
  constructor(member: string, detail: string) {
    super(
      member,
      new Error(detail),
      `memcached member ${member} broke the protocol (${detail}); its connection was closed and ` +
        'the operations in flight count as misses. Check that the address is a memcached server ' +
        'and that no proxy in between alters replies.',
    );
  }
}

/**
 * A value read carried another key's check (memcached's `flags`): the member or something in
 * between answered with the wrong key's data. It reads as a miss.
 */
export class MemcachedKeyMismatchError extends MemcachedError {
  constructor(
    /** `host:port` of the member. */
    readonly member: string,
    readonly count: number,
  ) {
    super(
      `memcached member ${member} returned ${count} value(s) stored under another key; they ` +
        'count as misses. Check for a proxy or a member that mixes up replies.',
    );
  }
}

/**
 * Memcached answered with an error reply (`SERVER_ERROR object too large for cache`,
 * `CLIENT_ERROR …`, `NOT_STORED`). The member is healthy; only this operation failed.
 */
export class MemcachedReplyError extends MemcachedError {
  constructor(
    /** `host:port` of the member. */
    readonly member: string,
    /** The reply line memcached sent. */
    readonly reply: string,
  ) {
    super(
      `memcached member ${member} refused the command: ${reply}` +
        (reply.includes('too large')
          ? ' (the value exceeds the server item size limit: store smaller values or raise memcached -I)'
          : ''),
    );
  }
}

/** No member is in the ring: discovery found none yet, or every member is ejected. */
export class MemcachedUnavailableError extends MemcachedError {
  constructor(detail: string) {
    super(
      `no memcached member is available (${detail}); the operation counts as a miss. ` +
        'Check the cache host option and that memcached pods are ready.',
    );
  }
}

/**
 * A value refused before it was sent (too large, or a string UTF-8 cannot carry unchanged): that
 * one set fails and, as memcached does when it refuses an item, the key's old value is deleted.
 * The member is healthy.
 */
export class MemcachedValueError extends MemcachedError {}

/** A value whose serialized bytes exceed `maxValueSize` is never sent; that one set fails. */
export class MemcachedValueTooLargeError extends MemcachedValueError {
  constructor(
    readonly key: string,
    readonly size: number,
    readonly maxValueSize: number,
  ) {
    super(
      `value for key "${shortKey(key)}" is ${size} bytes, over ` +
        `maxValueSize (${maxValueSize}); it was not cached. Cache smaller values or raise ` +
        'maxValueSize together with memcached -I.',
    );
  }
}

/**
 * A string value with a lone surrogate: UTF-8 cannot carry it, so it would read back changed
 * (`\uFFFD`). Refused instead; Keyv's JSON serializer escapes such strings and is unaffected.
 */
export class MemcachedValueEncodingError extends MemcachedValueError {
  constructor(readonly key: string) {
    super(
      `value for key "${shortKey(key)}" is a string with a lone surrogate, which UTF-8 cannot ` +
        'store unchanged; it was not cached. Serialize it first (JSON.stringify escapes it) or ' +
        'store a Buffer.',
    );
  }
}

/**
 * A member returned values longer than this process's `maxValueSize` (another process with a
 * larger limit wrote them): their bytes were skipped unread and they read as misses. The member
 * and its connection are healthy.
 */
export class MemcachedOversizedValueError extends MemcachedError {
  constructor(
    /** `host:port` of the member. */
    readonly member: string,
    readonly count: number,
    readonly maxValueSize: number,
  ) {
    super(
      `memcached member ${member} returned ${count} value(s) over maxValueSize (${maxValueSize}); ` +
        'they count as misses. Give every process that shares the cache the same maxValueSize.',
    );
  }
}

function shortKey(key: string): string {
  return key.length > 80 ? `${key.slice(0, 80)}…` : key;
}

function describe(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code && !cause.message.includes(code) ? `${code}: ${cause.message}` : cause.message;
  }
  return String(cause);
}
