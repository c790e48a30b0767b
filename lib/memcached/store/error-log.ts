import type { LoggerService } from '@nestjs/common';
import type { MemcachedError } from '../../errors/memcached.errors.js';
import {
  MemcachedKeyMismatchError,
  MemcachedMemberError,
  MemcachedReplyError,
} from '../../errors/memcached.errors.js';

/** At most one log line per member (or error kind) per this many ms; the rest are counted. */
const LOG_INTERVAL = 5_000;

/**
 * The store's error log at a bounded rate: one line per member (per kind for errors of no
 * member) per `LOG_INTERVAL`, the next one saying how many were left out meanwhile. A member that
 * answers garbage thousands of times a second costs one line every 5 s.
 */
export class ErrorLog {
  private readonly buckets = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly logger: LoggerService,
    private readonly context: string,
  ) {}

  log(error: MemcachedError): void {
    const bucket =
      error instanceof MemcachedMemberError || error instanceof MemcachedReplyError
        ? error.member
        : error instanceof MemcachedKeyMismatchError
          ? `${error.member} key check`
          : error.name;
    const now = Date.now();
    const state = this.buckets.get(bucket);
    if (state !== undefined && now - state.at < LOG_INTERVAL) {
      state.suppressed++;
      return;
    }
    const suppressed = state?.suppressed ?? 0;
    this.buckets.set(bucket, { at: now, suppressed: 0 });
    this.logger.error(
      suppressed > 0
        ? `${error.message} (${suppressed} similar errors not logged in the last ${Math.round((now - state!.at) / 1000)} s)`
        : error.message,
      this.context,
    );
  }

  /** Forget a member that left (its next error is logged at once if it comes back). */
  forget(member: string): void {
    this.buckets.delete(member);
    this.buckets.delete(`${member} key check`);
  }

  clear(): void {
    this.buckets.clear();
  }
}
