import type Keyv from 'keyv';

/** Counts of a `VerifiedLoad` (totals, or one `run`). */
export interface LoadTally {
  /** Operations issued (a multi-get of n keys counts n). */
  ops: number;
  sets: number;
  /** Sets that resolved to false (the store refused or a member failed). */
  setsFailed: number;
  /** Values read and checked against what their key may hold (hits and misses). */
  verified: number;
  hits: number;
  /** A value the key never held: another request's reply, another key's value, or a stale one. */
  wrong: number;
  /** Of `wrong`: a value this key held before its last acknowledged write (an overwritten one). */
  stale: number;
  /** A read right after a successful set of the same key that missed with no failure reported meanwhile. */
  lost: number;
  /** Operations whose promise rejected (the store must never let one). */
  rejected: number;
  /** Longest single Keyv call, in ms (a multi-get counts once). */
  maxLatencyMs: number;
}

export interface VerifiedLoadOptions {
  workers: number;
  keys: number;
  /**
   * Events so far that may cost entries (the store's `error` events; re-admissions, which move
   * keys or start a new generation): a miss after one is excused.
   */
  failures: () => number;
  /** Largest value padding, in bytes (most values are far smaller). @default 16000 */
  maxPadding?: number;
  /** Bound on operations per worker per run, whatever the time. @default 20000 */
  maxOpsPerWorker?: number;
}

/** What a key may hold: its last stored value, plus values of sets that failed but may have landed. */
interface KeyState {
  latest: string | undefined;
  uncertain: Set<string>;
}

/** Small seeded PRNG (mulberry32): the same run each time for a given seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `operation`, with its duration counted into `tally.maxLatencyMs`. */
async function timed<T>(tally: LoadTally, operation: Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await operation;
  } finally {
    tally.maxLatencyMs = Math.max(tally.maxLatencyMs, Date.now() - started);
  }
}

function emptyTally(): LoadTally {
  return {
    ops: 0,
    sets: 0,
    setsFailed: 0,
    verified: 0,
    hits: 0,
    wrong: 0,
    stale: 0,
    lost: 0,
    rejected: 0,
    maxLatencyMs: 0,
  };
}

/**
 * Concurrent workers doing set / get / multi-get through a Keyv and checking every value read.
 * Worker w alone writes keys w, w + workers, ...: it knows each value such a key may hold, and
 * every value names its key and version, so a reply matched to the wrong request shows as a
 * wrong value (or, for memcache-client, whose results are looked up by key, as a lost one).
 */
export class VerifiedLoad {
  readonly total = emptyTally();
  /** Samples of wrong values (at most 5), for the failure message. */
  readonly wrongSamples: string[] = [];
  private readonly states: KeyState[];
  private runs = 0;

  constructor(
    private readonly keyv: Keyv,
    private readonly options: VerifiedLoadOptions,
  ) {
    this.states = Array.from({ length: options.keys }, () => ({
      latest: undefined,
      uncertain: new Set<string>(),
    }));
  }

  /** Run every worker for `ms` (and at most `maxOpsPerWorker` operations each). */
  async run(ms: number): Promise<LoadTally> {
    const phase = ++this.runs;
    const tally = emptyTally();
    const deadline = Date.now() + ms;
    await Promise.all(
      Array.from({ length: this.options.workers }, (_, w) =>
        this.worker(w, phase, deadline, tally),
      ),
    );
    for (const name of Object.keys(tally) as Array<keyof LoadTally>) {
      if (name === 'maxLatencyMs') {
        this.total.maxLatencyMs = Math.max(this.total.maxLatencyMs, tally.maxLatencyMs);
      } else {
        this.total[name] += tally[name];
      }
    }
    return tally;
  }

  private async worker(w: number, phase: number, deadline: number, tally: LoadTally) {
    const { workers, keys, maxPadding = 16_000, maxOpsPerWorker = 20_000 } = this.options;
    const random = prng(w * 1_000 + phase);
    const owned = Math.ceil((keys - w) / workers);
    const pick = () => w + workers * Math.floor(random() * owned);
    let version = 0;
    for (let i = 0; i < maxOpsPerWorker && Date.now() < deadline; i++) {
      const index = pick();
      const key = `key-${index}`;
      const roll = random();
      try {
        if (roll < 0.35) {
          // Sizes from a few bytes to several TCP segments, mostly small.
          const padding = 'x'.repeat(Math.floor(random() ** 6 * maxPadding));
          const value = `${key}|${phase}.${w}.${version++}|${padding}`;
          tally.sets++;
          tally.ops++;
          if (await timed(tally, this.keyv.set(key, value))) {
            this.states[index].latest = value;
            const failuresBefore = this.options.failures();
            tally.ops++;
            this.check(tally, index, await timed(tally, this.keyv.get(key)), failuresBefore);
          } else {
            tally.setsFailed++;
            this.states[index].uncertain.add(value);
          }
        } else if (roll < 0.85) {
          tally.ops++;
          this.check(tally, index, await timed(tally, this.keyv.get(key)));
        } else {
          const indexes = Array.from({ length: 8 }, pick);
          tally.ops += indexes.length;
          const values = await timed(tally, this.keyv.get(indexes.map((n) => `key-${n}`)));
          indexes.forEach((n, k) => this.check(tally, n, values[k]));
        }
      } catch {
        tally.rejected++;
      }
    }
  }

  /** `failuresBefore`: failure count before the read, when it reads a key it has just set. */
  private check(tally: LoadTally, index: number, value: unknown, failuresBefore?: number) {
    const state = this.states[index];
    tally.verified++;
    if (value === undefined) {
      // A miss is normal once a command failed (any failure meanwhile excuses it, whichever
      // member it came from); otherwise a value just stored was lost, or a reply misrouted.
      if (failuresBefore !== undefined && this.options.failures() === failuresBefore) tally.lost++;
      return;
    }
    tally.hits++;
    if (value === state.latest || state.uncertain.has(value as string)) return;
    tally.wrong++;
    // Values name their key: one of this key's that is not the latest is an overwritten one.
    if (typeof value === 'string' && value.startsWith(`key-${index}|`)) tally.stale++;
    if (this.wrongSamples.length < 5) {
      this.wrongSamples.push(`key-${index}: ${String(value).slice(0, 40)}`);
    }
  }
}
