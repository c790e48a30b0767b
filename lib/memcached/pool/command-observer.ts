import type { Member } from '../../discovery/member.js';

/** A command the pool sends to one member. */
export type MemberOperation = 'get' | 'get_multi' | 'set' | 'add' | 'delete';

/**
 * Why the pool sent it: to the key's `owner`, a `replica` read, a `warmup` read from the previous
 * owner, a `copy` of a warmed-up value to the new owner, a `broadcast` to every member (the
 * namespace generation key), or an `invalidate` of a key a new owner may hold an older copy of.
 */
export type CommandReason = 'owner' | 'replica' | 'warmup' | 'copy' | 'broadcast' | 'invalidate';

/** How a command ended. */
export interface CommandOutcome {
  /** Set when the command failed (connection, protocol or error reply). */
  readonly error?: unknown;
  /** Keys found, for reads. */
  readonly hits?: number;
}

/**
 * Sees every command the pool sends to a member (telemetry, timings). Called on the hot path:
 * implementations must be cheap and must never throw. `start` runs in the caller's async context
 * (so a tracer can parent the command to the caller's span); the returned function is called
 * exactly once, when the command ends.
 */
export interface CommandObserver {
  start(
    operation: MemberOperation,
    member: Member,
    batchSize: number,
    reason: CommandReason,
    /** The command's key, or keys of a multi-get: for observers that record them on request. */
    keys?: string | readonly string[],
  ): (outcome: CommandOutcome) => void;
}
