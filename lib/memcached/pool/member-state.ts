import type { Member } from '../../discovery/member.js';
import { memberId } from '../../discovery/member.js';
import type { LatencyStats } from './latency-histogram.js';
import { LatencyHistogram } from './latency-histogram.js';
import type { MemberLink } from '../protocol/member-connection.js';

/** Counters of one member (since it joined the pool). */
export interface MemberStats {
  /** `host:port`. */
  readonly member: string;
  /** Keys sent to this member (a multi-get of n keys counts n). */
  readonly ops: number;
  readonly hits: number;
  readonly misses: number;
  /** Operations that failed (connection-class, protocol or an error reply). */
  readonly errors: number;
  /** Consecutive failures that count towards ejection. */
  readonly failures: number;
  /** Epoch ms of the member's next health probe while it is out of the ring; undefined while in. */
  readonly ejectedUntil: number | undefined;
  /** Times it left the ring after `failureLimit` consecutive failures. */
  readonly ejections: number;
  /** Times it went back on the ring after a probe answered. */
  readonly readmissions: number;
  /** Values copied to this member, their new owner, from where they were found (warm-up). */
  readonly warmupCopies: number;
  /** Reads this member answered as a replica after the owner missed or failed. */
  readonly replicaReads: number;
  /** Replies that broke the protocol (unknown line, unasked reply, impossible value…). */
  readonly protocolErrors: number;
  /** Values read with another key's check in their flags (read as misses). */
  readonly keyMismatches: number;
  /** Values read that were over `maxValueSize`, skipped unread (read as misses). */
  readonly oversizedValues: number;
  /** Command round-trip times; only with `collectTimings`. */
  readonly latency?: LatencyStats;
}

/** What the pool knows about one member: its connection, counters and ejection state. */
export class MemberState {
  readonly id: string;
  connection: MemberLink | undefined;
  failures = 0;
  /** Epoch ms of the next probe while out of the ring; 0 while on it. */
  ejectedUntil = 0;
  readmitTimer: NodeJS.Timeout | undefined;
  /** Epoch ms of the ejection (0 while in the ring). */
  ejectedAt = 0;
  /** Epoch ms of the latest readmission (0: never re-admitted). */
  readmittedAt = 0;
  /** Ejections in a row, each soon after the readmission before it: the backoff exponent. */
  ejectionStreak = 0;
  /** The pool's write count when it left the ring: writes since then may have made it stale. */
  writesAtEjection = 0;
  /** Connection of the health probe in flight, if any. */
  probe: MemberLink | undefined;
  ops = 0;
  hits = 0;
  misses = 0;
  errors = 0;
  ejections = 0;
  readmissions = 0;
  warmupCopies = 0;
  replicaReads = 0;
  protocolErrors = 0;
  keyMismatches = 0;
  oversizedValues = 0;
  readonly latency = new LatencyHistogram();

  constructor(public member: Member) {
    this.id = memberId(member);
  }

  stats(timed: boolean): MemberStats {
    return {
      member: this.id,
      ops: this.ops,
      hits: this.hits,
      misses: this.misses,
      errors: this.errors,
      failures: this.failures,
      ejectedUntil: this.ejectedUntil === 0 ? undefined : this.ejectedUntil,
      ejections: this.ejections,
      readmissions: this.readmissions,
      warmupCopies: this.warmupCopies,
      replicaReads: this.replicaReads,
      protocolErrors: this.protocolErrors,
      keyMismatches: this.keyMismatches,
      oversizedValues: this.oversizedValues,
      ...(timed && { latency: this.latency.stats() }),
    };
  }

  /** Close its connections and probe, stop its timer. */
  dispose(): void {
    if (this.readmitTimer) clearTimeout(this.readmitTimer);
    this.readmitTimer = undefined;
    this.probe?.close();
    this.probe = undefined;
    this.connection?.close();
    this.connection = undefined;
  }
}
