import type { MigrationFailedError } from '../errors/migration.errors.js';
import { maskCredentials } from './mask-credentials.js';
import { errorLine } from './migration-check.js';
import type { DataSourceMigrationStatus } from './migration-check.js';

// The lines the commands print and the statuses they build from what happened: the wording
// users, scripts and the tests rely on lives here, in one place.

/** The status of a data source whose options alone are wrong. */
export function configurationProblem(name: string, reason: string): DataSourceMigrationStatus {
  return { name, reachable: false, problem: 'configuration', reason, pending: [] };
}

/** The status of a data source that did not answer within `ms`. */
export function noAnswer(name: string, ms: number): DataSourceMigrationStatus {
  const seconds = Math.round(ms / 100) / 10;
  return {
    name,
    reachable: false,
    problem: 'unreachable',
    reason: `no answer within ${seconds} s`,
    pending: [],
  };
}

/** Why a data source is not ready yet: unreachable, or how many and which migrations pend. */
export function describeNotReady(status: DataSourceMigrationStatus): string {
  if (!status.reachable) return `database unreachable: ${status.name}: ${status.reason}`;
  return `${plural(status.pending.length, 'pending migration')} on ${status.name}: ${status.pending.join(', ')}`;
}

/** The line for a problem waiting will not fix (exit 2). */
export function finalProblemLine(status: DataSourceMigrationStatus): string {
  switch (status.problem) {
    case 'authentication':
      return `Access denied on ${status.name}: ${status.reason}. Fix the credentials or the user's privileges; waiting will not help.`;
    case 'unknown-database':
      return `Unknown database on ${status.name}: ${status.reason}. Create it or fix its name; waiting will not help.`;
    default:
      return `Configuration error on ${status.name}: ${status.reason}. Fix the data source options; waiting will not help.`;
  }
}

/** The line for a migration that threw: which one, and which earlier ones are still applied. */
export function migrationFailedLine(
  name: string,
  secrets: readonly string[],
  error: MigrationFailedError,
): string {
  const reason = maskCredentials(errorLine(error.cause), secrets);
  const line = `Migration ${error.migration} failed on ${name}: ${reason}.`;
  const before = error.ranBefore;
  if (before.length === 0) return `${line} No migration was applied before it in this run.`;
  const kept = error.kept;
  if (kept === undefined) {
    return `${line} Applied before it in this run: ${before.join(', ')} (could not read which are still recorded).`;
  }
  if (kept.length === before.length) {
    return `${line} Applied before it in this run, and still applied: ${before.join(', ')}.`;
  }
  if (kept.length === 0) {
    return `${line} Applied before it in this run, then rolled back with it: ${before.join(', ')}.`;
  }
  return `${line} Applied before it in this run: ${before.join(', ')}; still applied: ${kept.join(', ')}.`;
}

/** The line for a command stopped by a signal; `what` says what it was doing. */
export function interruptedLine(signal: AbortSignal | undefined, what: string): string {
  return `Interrupted by ${String(signal?.reason ?? 'signal')} ${what}`;
}

export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
