import type { LoggerService } from '@nestjs/common';
import { memberId } from '../../discovery/member.js';
import type {
  DiscoveryStats,
  LookupResult,
  Member,
  MemberDiff,
  MemberSource,
} from '../../discovery/member.js';
import type { MemcachedPool } from '../pool/memcached-pool.js';

/** Where the feed reports to (the store's `members` and `refresh` events, its error log). */
export interface MemberFeedSink {
  readonly logger: LoggerService;
  readonly logContext: string;
  /** The pool's members changed: every member now, and what changed. May throw (a listener's bug). */
  changed(members: readonly Member[], diff: MemberDiff): void;
  /** These members left the pool. */
  removed(members: readonly Member[]): void;
  /** A lookup of the source ended, changed or not. */
  lookedUp(result: LookupResult): void;
}

/**
 * Discovery to pool: each member list the source produces is applied to the pool as a diff, logged
 * when it changed anything, and reported to the sink, until `stop()`.
 */
export class MemberFeed {
  /** Resolves once the source's first lookup is applied, whatever its outcome; never rejects. */
  readonly ready: Promise<void>;
  private readonly unsubscribe: () => void;
  private stopped = false;

  /** `ownsSource`: the feed stops the source on `stop()` (the store made it). */
  constructor(
    private readonly source: MemberSource,
    private readonly ownsSource: boolean,
    private readonly pool: MemcachedPool,
    private readonly sink: MemberFeedSink,
  ) {
    const unsubscribeChanges = source.onChange((members, diff) => this.apply(members, diff));
    const unsubscribeLookups = source.onLookup?.((result) => sink.lookedUp(result));
    this.unsubscribe = () => {
      unsubscribeChanges();
      unsubscribeLookups?.();
    };
    // Never rejects: a failing source or `members` listener must not turn every operation of the
    // store into an error.
    this.ready = source
      .start()
      .then(() => this.apply(source.members()))
      .catch((error: unknown) =>
        sink.logger.error(
          `memcached member source failed to start: ${String(error)}`,
          sink.logContext,
        ),
      );
  }

  /** Re-resolve the members now and apply them; resolves when done, never rejects. */
  async refresh(): Promise<void> {
    await this.source.refresh();
    this.apply(this.source.members());
  }

  /** Ask the source for an early lookup (a member broke: the list may be stale). */
  requestRefresh(reason: string): void {
    this.source.requestRefresh(reason);
  }

  /** How discovery fares; undefined for sources that keep no stats (a fixed list). */
  stats(): DiscoveryStats | undefined {
    return this.source.stats?.();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribe();
    if (this.ownsSource) this.source.stop();
  }

  private apply(members: readonly Member[], diff?: MemberDiff): void {
    if (this.stopped) return;
    const applied = this.pool.setMembers(members);
    if (applied.removed.length > 0) this.sink.removed(applied.removed);
    if (applied.added.length === 0 && applied.removed.length === 0) return;
    const { logger, logContext } = this.sink;
    logger.log(`memcached members: ${members.map(memberId).join(', ') || '(none)'}`, logContext);
    try {
      this.sink.changed(members, diff ?? applied);
    } catch (error) {
      // A listener's bug must not stop the store from following its members.
      logger.error(`a 'members' listener threw: ${String(error)}`, logContext);
    }
  }
}
