/** The latest check of one key. */
interface Entry<T> {
  readonly promise: Promise<T>;
  /** Epoch ms when it ended; unset while it runs. */
  settledAt?: number;
}

/** What {@link CachedCheck.run} hands back. */
export interface CachedOutcome<T> {
  readonly value: T;
  /** True when the value is that of a check that had ended before this call. */
  readonly cached: boolean;
}

/**
 * Runs a check at most once per `ttl` ms per key, and never twice at the same time: probes that
 * arrive while one runs share its result, so readiness probes from every kubelet and load
 * balancer cost one check per `ttl` however often they come. Each caller says how old a result
 * it accepts. `check` must not reject.
 */
export class CachedCheck<T> {
  private readonly entries = new Map<string, Entry<T>>();

  /** The result of `key`'s running check, or of one that ended under `ttl` ms ago, or of a new one. */
  run(key: string, ttl: number, check: () => Promise<T>): Promise<CachedOutcome<T>> {
    const entry = this.entries.get(key);
    if (entry !== undefined && entry.settledAt === undefined) {
      return entry.promise.then((value) => ({ value, cached: false }));
    }
    if (entry?.settledAt !== undefined && Date.now() - entry.settledAt < ttl) {
      return entry.promise.then((value) => ({ value, cached: true }));
    }
    const fresh: Entry<T> = {
      // A result's age counts from the end of its check: a slow database is not asked again
      // the moment it answers.
      promise: check().finally(() => {
        fresh.settledAt = Date.now();
      }),
    };
    this.entries.set(key, fresh);
    return fresh.promise.then((value) => ({ value, cached: false }));
  }
}
