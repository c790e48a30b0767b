import type { LookupReason } from './member.js';

/** Options of `RefreshScheduler` (already validated: see `resolveCacheOptions`). */
export interface RefreshSchedulerOptions {
  /** Periodic lookup, in ms from the end of the previous one; 0 turns it off. */
  readonly refreshInterval: number;
  /** Least time between the start of a lookup and a failure-triggered one, in ms. */
  readonly minRefreshInterval: number;
  /** One lookup. A rejection is handed to `onError`; the schedule goes on. */
  readonly run: (reason: LookupReason) => Promise<void>;
  /** A lookup rejected (it should not: lookups report their own failures). */
  readonly onError: (error: unknown) => void;
  /** A failure-triggered lookup starts now, for this reason (for a debug line). */
  readonly onRequested?: (reason: string) => void;
}

/**
 * When lookups run (ioredis-cluster style), whatever they look up: one at a time (callers join
 * the running one), failure-triggered ones rate-limited to one per `minRefreshInterval`, and a
 * periodic timer that re-arms only after a lookup ends, so slow lookups never pile up.
 */
export class RefreshScheduler {
  private startPromise?: Promise<void>;
  private inFlight?: Promise<void>;
  /**
   * `inFlight` until the first microtask checkpoint after it began: no I/O has run yet, so it
   * cannot have seen anything newer than a caller has, and a refresh() then may join it.
   */
  private startedThisTick?: Promise<void>;
  /** The one lookup that refresh() calls made during an older `inFlight` wait for. */
  private followUp?: Promise<void>;
  private stopped = false;
  private periodicTimer?: NodeJS.Timeout;
  private deferredTimer?: NodeJS.Timeout;
  /** A failure-triggered lookup is owed; it runs as soon as the rate limit allows. */
  private refreshWanted = false;
  private refreshReason = '';
  private lastStartedAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: RefreshSchedulerOptions) {}

  /** True once `stop()` was called. */
  get isStopped(): boolean {
    return this.stopped;
  }

  /** The first lookup; the periodic timer runs from its end. The same promise on every call. */
  start(): Promise<void> {
    this.startPromise ??= this.runOrJoin('start');
    return this.startPromise;
  }

  /**
   * Look up now: resolves once a lookup that began after this call has ended, so the answer is
   * never older than what the caller knew. Calls made together share one lookup; calls made
   * during an older lookup share one follow-up that starts when it ends. Never rejects.
   */
  refresh(): Promise<void> {
    if (this.stopped || !this.inFlight || this.inFlight === this.startedThisTick) {
      return this.runOrJoin('manual');
    }
    this.followUp ??= this.inFlight.then(() => {
      this.followUp = undefined;
      // A lookup running now (started by startOwedRefresh() as the old one ended) began after the callers.
      return this.runOrJoin('manual');
    });
    return this.followUp;
  }

  /**
   * Look up soon (a member failed): however many calls come, at most one lookup starts per
   * `minRefreshInterval`; calls inside a window share one lookup at its end. Never throws.
   */
  request(reason: string): void {
    if (this.stopped) return;
    this.refreshWanted = true;
    this.refreshReason = reason;
    this.startOwedRefresh();
  }

  /** No lookup starts afterwards; timers are cleared. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.periodicTimer);
    clearTimeout(this.deferredTimer);
    this.periodicTimer = this.deferredTimer = undefined;
  }

  /** Start a lookup, or join the one running (periodic and failure-triggered lookups). */
  private runOrJoin(reason: LookupReason): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.inFlight) return this.inFlight;
    this.lastStartedAt = Date.now();
    const lookup = this.options
      .run(reason)
      .catch((error: unknown) => this.options.onError(error))
      .finally(() => {
        this.inFlight = undefined;
        if (this.startPromise) this.armPeriodic();
        this.startOwedRefresh();
      });
    this.inFlight = this.startedThisTick = lookup;
    queueMicrotask(() => {
      if (this.startedThisTick === lookup) this.startedThisTick = undefined;
    });
    return lookup;
  }

  /** Start the owed failure-triggered lookup if the rate limit allows, else when it will. */
  private startOwedRefresh(): void {
    if (!this.refreshWanted || this.stopped || this.inFlight || this.deferredTimer) return;
    const wait = this.lastStartedAt + this.options.minRefreshInterval - Date.now();
    if (wait > 0) {
      this.deferredTimer = setTimeout(() => {
        this.deferredTimer = undefined;
        this.startOwedRefresh();
      }, wait).unref();
      return;
    }
    this.refreshWanted = false;
    this.options.onRequested?.(this.refreshReason);
    void this.runOrJoin('failure');
  }

  private armPeriodic(): void {
    clearTimeout(this.periodicTimer);
    this.periodicTimer = undefined;
    if (this.stopped || this.options.refreshInterval === 0) return;
    this.periodicTimer = setTimeout(() => {
      this.periodicTimer = undefined;
      void this.runOrJoin('periodic');
    }, this.options.refreshInterval).unref();
  }
}
