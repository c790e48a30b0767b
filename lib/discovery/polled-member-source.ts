import type { LoggerService } from '@nestjs/common';
import { diffMembers, isEmptyDiff, memberAddress, memberId } from './member.js';
import type {
  DiscoveryStats,
  LookupReason,
  LookupResult,
  Member,
  MemberDiff,
  MemberSource,
} from './member.js';
import { RefreshScheduler } from './refresh-scheduler.js';

export const LOG_CONTEXT = 'K8sDiscovery';

/** What one poll found: a list to apply (sorted by `normalizeMembers`), and/or why it failed. */
export interface PollOutcome {
  /** The list to apply; undefined keeps the current one. */
  readonly members?: Member[];
  /** Why the poll (or part of it) failed; undefined when it fully succeeded. */
  readonly error?: string;
}

/** Settings every polled source shares (validated once, in `resolveCacheOptions`). */
export interface PolledSourceSettings {
  readonly refreshInterval: number;
  readonly minRefreshInterval: number;
  readonly logger: LoggerService;
  /** What a poll is, for log lines: 'DNS lookup', 'ElastiCache configuration query'. */
  readonly pollName: string;
  /** What is polled, for log lines (the host option). */
  readonly target: string;
}

type Listener = (members: readonly Member[], diff: MemberDiff) => void;

/**
 * A member source that polls something (DNS, an ElastiCache configuration endpoint) on a
 * `RefreshScheduler` and keeps the last good list: a poll that fails or brings no list never
 * replaces it. Subclasses say how to poll; listeners, stats and log lines are the same for all.
 */
export abstract class PolledMemberSource implements MemberSource {
  protected readonly logger: LoggerService;
  private readonly scheduler: RefreshScheduler;
  private readonly listeners = new Set<Listener>();
  private readonly lookupListeners = new Set<(result: LookupResult) => void>();
  private current: Member[];
  private startPromise?: Promise<readonly Member[]>;

  private lookups = 0;
  private readonly lookupsByReason: Record<LookupReason, number> = {
    start: 0,
    periodic: 0,
    failure: 0,
    manual: 0,
  };
  private failures = 0;
  private healthy = true;
  private lastError?: string;
  private lastErrorAt?: number;
  private lastSuccessAt?: number;

  /**
   * @param initial Members known before any poll (IP literals of the host option).
   * @param pollable False when there is nothing to poll (only IP literals): no lookup ever runs.
   */
  protected constructor(
    private readonly settings: PolledSourceSettings,
    initial: Member[],
    private readonly pollable: boolean,
  ) {
    this.logger = settings.logger;
    this.current = initial;
    this.scheduler = new RefreshScheduler({
      refreshInterval: settings.refreshInterval,
      minRefreshInterval: settings.minRefreshInterval,
      run: (reason) => this.lookup(reason),
      onError: (error) => this.recordFailure(`unexpected error: ${String(error)}`),
      onRequested: (reason) => this.logger.debug?.(`Refreshing members: ${reason}`, LOG_CONTEXT),
    });
  }

  /** One poll. Never rejects on an expected failure: it reports it in `error`. */
  protected abstract poll(): Promise<PollOutcome>;

  /** Source-specific stats fields. */
  protected extraStats(): Partial<DiscoveryStats> {
    return {};
  }

  /** Abort what a poll has in flight (shutdown). */
  protected cancelPoll(): void {}

  /** First lookup, then the periodic refresh. Resolves with the members; never rejects. */
  start(): Promise<readonly Member[]> {
    this.startPromise ??= (this.pollable ? this.scheduler.start() : Promise.resolve()).then(
      () => this.current,
    );
    return this.startPromise;
  }

  members(): readonly Member[] {
    return this.current;
  }

  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onLookup(listener: (result: LookupResult) => void): () => void {
    this.lookupListeners.add(listener);
    return () => this.lookupListeners.delete(listener);
  }

  refresh(): Promise<void> {
    return this.pollable ? this.scheduler.refresh() : Promise.resolve();
  }

  requestRefresh(reason: string): void {
    if (this.pollable) this.scheduler.request(reason);
  }

  stop(): void {
    this.scheduler.stop();
    try {
      this.cancelPoll();
    } catch (error) {
      this.logger.debug?.(`Cancelling a lookup failed: ${String(error)}`, LOG_CONTEXT);
    }
  }

  stats(): DiscoveryStats {
    return {
      lookups: this.lookups,
      lookupsByReason: { ...this.lookupsByReason },
      failures: this.failures,
      healthy: this.healthy,
      lastError: this.lastError,
      lastErrorAt: this.lastErrorAt,
      lastSuccessAt: this.lastSuccessAt,
      members: this.current.map(memberId),
      ...this.extraStats(),
    };
  }

  private async lookup(reason: LookupReason): Promise<void> {
    const started = performance.now();
    this.lookups++;
    this.lookupsByReason[reason]++;
    const outcome = await this.poll();
    // stop() ran meanwhile: the app is shutting down, nobody wants this answer.
    if (this.scheduler.isStopped) return;

    if (outcome.members !== undefined) this.apply(outcome.members);
    if (outcome.error !== undefined) this.recordFailure(outcome.error);
    else this.recordSuccess();
    const result: LookupResult = {
      reason,
      members: this.current.length,
      durationMs: performance.now() - started,
      error: outcome.error,
    };
    for (const listener of this.lookupListeners) {
      try {
        listener(result);
      } catch (thrown) {
        this.logger.error(`A lookup listener threw: ${String(thrown)}`, LOG_CONTEXT);
      }
    }
  }

  private apply(next: Member[]): void {
    const diff = diffMembers(this.current, next);
    if (isEmptyDiff(diff)) return;
    this.current = next;
    const list = (members: readonly Member[]) => members.map(memberId).join(', ') || 'none';
    const changed = diff.changed ?? [];
    const moved = changed.length
      ? `; now at another address ${changed.map((m) => `${memberId(m)} (${memberAddress(m)})`).join(', ')}`
      : '';
    this.logger.log(
      `Cache members of "${this.settings.target}" changed: added ${list(diff.added)}; ` +
        `removed ${list(diff.removed)}${moved}; now ${next.length}`,
      LOG_CONTEXT,
    );
    for (const listener of this.listeners) {
      try {
        listener(next, diff);
      } catch (error) {
        this.logger.error(
          `A member-change listener threw: ${error instanceof Error ? error.message : String(error)}`,
          error instanceof Error ? error.stack : undefined,
          LOG_CONTEXT,
        );
      }
    }
  }

  private recordFailure(reason: string): void {
    this.failures++;
    this.lastError = reason;
    this.lastErrorAt = Date.now();
    const keeping =
      this.current.length > 0
        ? `keeping the ${this.current.length} current members`
        : 'no members yet, so every cache read is a miss';
    const message = `${this.settings.pollName} for cache members failed: ${reason}; ${keeping} and retrying`;
    if (this.healthy) this.logger.warn(message, LOG_CONTEXT);
    else this.logger.debug?.(message, LOG_CONTEXT);
    this.healthy = false;
  }

  private recordSuccess(): void {
    this.lastSuccessAt = Date.now();
    if (!this.healthy) {
      this.logger.log(
        `${this.settings.pollName} for cache members works again (${this.current.length} members)`,
        LOG_CONTEXT,
      );
    }
    this.healthy = true;
  }
}
