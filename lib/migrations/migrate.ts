import type { DataSource } from 'typeorm';
import { acquireMigrationLock } from './migration-lock.js';
import type { MigrationLockOptions } from './migration-lock.js';

/**
 * Apply the pending migrations of an initialized data source while holding the migration
 * lock, and return the names applied (empty when another process applied them first).
 *
 * The lock is taken on a dedicated query runner and the migrations run on that same
 * connection, because PostgreSQL and MySQL locks belong to the session holding them. The list
 * of pending migrations is read only once the lock is held, so concurrent copies apply each
 * migration exactly once.
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
    try {
      const executor = new MigrationExecutor(dataSource, queryRunner);
      executor.transaction = dataSource.options.migrationsTransactionMode ?? 'all';
      applied = (await executor.executePendingMigrations()).map((migration) => migration.name);
    } catch (error) {
      // The migration's error is the one to report; a failed unlock (e.g. the connection is
      // gone) loses nothing, as the server releases a dead session's locks.
      await lock.release().catch(() => undefined);
      throw error;
    }
    await lock.release();
    return applied;
  } finally {
    await queryRunner.release();
  }
}
