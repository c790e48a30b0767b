import type { DataSource, MigrationInterface, QueryRunner } from 'typeorm';
import { MigrationFailedError } from '../errors/migration.errors.js';
import { acquireMigrationLock } from './migration-lock.js';
import type { MigrationLockOptions } from './migration-lock.js';

/** What `MigrationExecutor#getMigrations` returns: the one hook to see which migration runs. */
interface ExecutorMigration {
  name: string;
  instance?: MigrationInterface;
}

/**
 * Apply the pending migrations of an initialized data source while holding the migration
 * lock, and return the names applied (empty when another process applied them first).
 *
 * The lock is taken on a dedicated query runner and the migrations run on that same
 * connection, because PostgreSQL and MySQL locks belong to the session holding them. The list
 * of pending migrations is read only once the lock is held, so concurrent copies apply each
 * migration exactly once. A migration that throws rejects with {@link MigrationFailedError}
 * (naming it and what ran before it); errors before any migration starts pass through.
 */
export async function runMigrationsLocked(
  dataSource: DataSource,
  options: MigrationLockOptions,
): Promise<string[]> {
  const { MigrationExecutor } = await import('typeorm');
  const queryRunner = dataSource.createQueryRunner('master');
  try {
    await queryRunner.connect();
    const lock = await acquireMigrationLock(dataSource, queryRunner, options);
    let applied: string[];
    const executor = new MigrationExecutor(dataSource, queryRunner);
    const progress = trackProgress(executor);
    try {
      executor.transaction = dataSource.options.migrationsTransactionMode ?? 'all';
      applied = (await executor.executePendingMigrations()).map((migration) => migration.name);
    } catch (error) {
      const failure = progress.running
        ? new MigrationFailedError(
            progress.running,
            progress.done,
            await keptAfterFailure(executor, progress.done),
            error,
          )
        : error;
      // The migration's error is the one to report; a failed unlock (e.g. the connection is
      // gone) loses nothing, as the server releases a dead session's locks.
      await lock.release().catch(() => undefined);
      throw failure;
    }
    await lock.release();
    return applied;
  } finally {
    await queryRunner.release();
  }
}

/**
 * Follow which migration the executor is running, by wrapping each instance's `up`. A
 * migration counts as done once the next one starts, so a failure in its bookkeeping (recording
 * it, committing) still names it.
 */
function trackProgress(executor: object): { running?: string; done: string[] } {
  const progress: { running?: string; done: string[] } = { done: [] };
  const target = executor as { getMigrations(): ExecutorMigration[] };
  const getMigrations = target.getMigrations.bind(executor);
  target.getMigrations = () =>
    getMigrations().map((migration) => {
      const instance = migration.instance;
      if (!instance) return migration;
      // Inherits everything else (e.g. `transaction`) from the user's instance.
      const tracked = Object.create(instance) as MigrationInterface;
      tracked.up = (queryRunner: QueryRunner): Promise<void> => {
        if (progress.running) progress.done.push(progress.running);
        progress.running = migration.name;
        return instance.up(queryRunner);
      };
      migration.instance = tracked;
      return migration;
    });
  return progress;
}

async function keptAfterFailure(
  executor: { getExecutedMigrations(): Promise<{ name: string }[]> },
  ranBefore: readonly string[],
): Promise<string[] | undefined> {
  try {
    const recorded = new Set((await executor.getExecutedMigrations()).map((m) => m.name));
    return ranBefore.filter((name) => recorded.has(name));
  } catch {
    return undefined;
  }
}
