import { K8sError, K8sOptionsError } from './k8s.error.js';

/** A command line that `checkmigrations` or `migrate` cannot run; the message carries the usage. */
export class MigrationUsageError extends K8sOptionsError {}

/** `migrate` waited `--timeout` seconds for the lock another `migrate` still holds. */
export class MigrationLockTimeoutError extends K8sError {}

/** `migrate` has no lock for this database type, so it refuses to run rather than risk a race. */
export class MigrationLockUnsupportedError extends K8sOptionsError {}

/**
 * A migration failed while `migrate` ran it (its error is the `cause`). Fix the migration and
 * run `migrate` again: the migrations table says which ones are applied.
 */
export class MigrationFailedError extends K8sError {
  constructor(
    /** The migration that failed. */
    readonly migration: string,
    /** The migrations this run completed before it, in order. */
    readonly ranBefore: readonly string[],
    /**
     * Which of `ranBefore` the migrations table still records after the failure (the others
     * were rolled back with it); undefined when it could not be read.
     */
    readonly kept: readonly string[] | undefined,
    cause: unknown,
  ) {
    super(`Migration ${migration} failed.`, { cause });
  }
}
