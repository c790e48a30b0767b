import type { DataSource, MigrationInterface, QueryRunner } from 'typeorm';
import { MigrationFailedError } from '../errors/migration.errors.js';
import { acquireMigrationLock } from './migration-lock.js';
import type { MigrationLockOptions } from './migration-lock.js';

/** What `MigrationExecutor#getMigrations` returns: the one hook to see which migration runs. */
interface ExecutorMigration {
  name: string;
  instance?: MigrationInterface;
}

/** Options of {@link runMigrationsLocked}. */
type RunMigrationsOptions = MigrationLockOptions & {
  /** Called as each migration starts, with its name. */
  onMigration?: (name: string) => void;
};

/** Thrown inside the executor to stop before the next migration once `signal` aborted. */
const STOP = Symbol('stop');

/**
 * Apply the pending migrations of an initialized data source while holding the migration
 * lock, and return the names applied (empty when another process applied them first).
 *
 * The lock is taken on a dedicated query runner and the migrations run on that same
 * connection, because PostgreSQL and MySQL locks belong to the session holding them. The list
 * of pending migrations is read only once the lock is held, so concurrent copies apply each
 * migration exactly once. A migration that throws rejects with {@link MigrationFailedError}
 * (naming it and what ran before it); errors before any migration starts pass through.
 *
 * Once `signal` aborts, the migration running is finished, never cut short, and no further
 * one is started, except in transaction mode `all`, where the rest belong to the same
 * transaction and are finished too; the names applied so far are returned.
 */
export async function runMigrationsLocked(
  dataSource: DataSource,
  options: RunMigrationsOptions,
): Promise<string[]> {
  const { MigrationExecutor } = await import('typeorm');
  const queryRunner = dataSource.createQueryRunner('master');
  try {
    await queryRunner.connect();
    const lock = await acquireMigrationLock(dataSource, queryRunner, options);
    let applied: string[];
    const executor = new MigrationExecutor(dataSource, queryRunner);
    executor.transaction = dataSource.options.migrationsTransactionMode ?? 'all';
    const progress = trackProgress(
      executor,
      () => {
        if (options.signal?.aborted && executor.transaction !== 'all') throw STOP;
      },
      options.onMigration,
    );
    try {
      applied = (await executor.executePendingMigrations()).map((migration) => migration.name);
    } catch (error) {
      if (error === STOP) {
        await lock.release().catch(() => undefined);
        return progress.running ? [...progress.done, progress.running] : [];
      }
      const failure = progress.running
        ? new MigrationFailedError(
            progress.running,
            progress.done,
            // On a fresh connection: the failure may have been the loss of this one.
            await keptAfterFailure(new MigrationExecutor(dataSource), progress.done),
            error,
          )
        : error;
      // The migration's error is the one to report; a failed unlock (e.g. the connection is
      // gone) loses nothing, as the server releases a dead session's locks.
      await lock.release().catch(() => undefined);
      throw failure;
    }
    // Applied and recorded: a failed unlock must not turn that into a failure (the server
    // drops the lock with the session, which is released below).
    await lock.release().catch(() => undefined);
    return applied;
  } finally {
    await queryRunner.release();
  }
}

/**
 * Follow which migration the executor is running, by wrapping each instance's `up`
 * (`beforeNext` may throw to start no more). A
 * migration counts as done once the next one starts, so a failure in its bookkeeping (recording
 * it, committing) still names it.
 */
function trackProgress(
  executor: object,
  beforeNext: () => void,
  onMigration: ((name: string) => void) | undefined,
): { running?: string; done: string[] } {
  const progress: { running?: string; done: string[] } = { done: [] };
  const target = executor as { getMigrations(): ExecutorMigration[] };
  const getMigrations = target.getMigrations.bind(executor);
  target.getMigrations = () =>
    getMigrations().map((migration) => {
      const instance = migration.instance;
      if (!instance) return migration;
      // Inherits everything else (e.g. `transaction`) from the user's instance.
      const tracked = Object.create(instance) as MigrationInterface;
      tracked.up = async (queryRunner: QueryRunner): Promise<void> => {
        beforeNext();
        if (progress.running) progress.done.push(progress.running);
        progress.running = migration.name;
        onMigration?.(migration.name);
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
