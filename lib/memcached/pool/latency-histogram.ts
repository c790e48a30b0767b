/**
 * Upper bounds of the latency buckets, in ms: Prometheus' default buckets (5 ms to 10 s) extended
 * down to 0.5 ms, since a memcached round trip inside a cluster takes well under 5 ms.
 */
const LATENCY_BUCKETS_MS: readonly number[] = [
  0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
];

/** Round-trip times of the commands sent to one member (failed ones included). */
export interface LatencyStats {
  /** Commands timed. */
  readonly count: number;
  /** Their total time, in ms. */
  readonly sumMs: number;
  /** Commands that took at most `leMs` ms (cumulative), bounds ascending; `count` is the +Inf one. */
  readonly buckets: readonly { readonly leMs: number; readonly count: number }[];
}

/** Command round-trip times of one member, in fixed buckets. */
export class LatencyHistogram {
  /** Commands per bucket (not cumulative; the last one is over every bound). */
  private counts: number[] | undefined;
  private sumMs = 0;

  /** Count one command sent at `started` (a `performance.now()`). */
  record(started: number): void {
    const ms = performance.now() - started;
    this.counts ??= new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
    let bucket = 0;
    while (bucket < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[bucket]) bucket++;
    this.counts[bucket]++;
    this.sumMs += ms;
  }

  stats(): LatencyStats {
    const counts = this.counts ?? [];
    const buckets: Array<{ leMs: number; count: number }> = [];
    let count = 0;
    for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) {
      count += counts[i] ?? 0;
      buckets.push({ leMs: LATENCY_BUCKETS_MS[i], count });
    }
    return {
      count: count + (counts[LATENCY_BUCKETS_MS.length] ?? 0),
      sumMs: this.sumMs,
      buckets,
    };
  }
}
