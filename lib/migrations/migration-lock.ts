import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { DataSource, QueryRunner } from 'typeorm';
import {
  MigrationLockTimeoutError,
  MigrationLockUnsupportedError,
} from '../errors/migration.errors.js';

/** Options of {@link acquireMigrationLock}. */
export interface MigrationLockOptions {
  /** How long to wait for a lock another process holds, in ms; 0 waits without limit. */
  timeoutMs: number;
  /** Pause between two tries while the lock is busy, in ms. @default 250 */
  pollIntervalMs?: number;
  /** Aborting stops the wait: rejects with the signal's reason (an AbortError whose cause is the reason when aborted between tries). */
  signal?: AbortSignal;
  /** Called once, the first time the lock is found busy. */
  onBusy?: () => void;
}

/** A held migration lock. */
export interface MigrationLock {
  /** Release the lock (idempotent). */
  release(): Promise<void>;
}

/** The database types `migrate` can lock. */
export const LOCKABLE_TYPES = ['postgres', 'mysql', 'mariadb', 'better-sqlite3'] as const;

/**
 * Take the lock that serialises `migrate` runs against one database, trying without blocking
 * and polling, so the wait honours `timeoutMs` and `signal` the same way on every database.
 *
 * - PostgreSQL: `pg_try_advisory_lock(key)`, key derived from the lock name. Advisory locks
 *   belong to the session, so `queryRunner` must be connected and stay so (and run the
 *   migrations) until {@link MigrationLock.release}; the server drops the lock if the
 *   process dies.
 * - MariaDB/MySQL: `GET_LOCK(name, 0)`, also per session and server-wide, hence the database
 *   name in the lock name.
 * - better-sqlite3: `BEGIN IMMEDIATE` on a sidecar file `<database>.migrate-lock`. Taking it
 *   on the database itself would block our own migration's writes (TypeORM uses one
 *   connection), and TypeORM's deferred `BEGIN` alone does not serialise two processes: both
 *   read the migrations table, then one fails with `SQLITE_BUSY` when upgrading to write.
 */
export async function acquireMigrationLock(
  dataSource: DataSource,
  queryRunner: QueryRunner,
  options: MigrationLockOptions,
): Promise<MigrationLock> {
  const type = dataSource.options.type;
  const name = lockName(dataSource);
  if (type === 'postgres') {
    const key = postgresLockKey(name);
    await pollForLock(async () => {
      const rows: { locked: boolean }[] = await queryRunner.query(
        'SELECT pg_try_advisory_lock($1::bigint) AS locked',
        [key],
      );
      return rows[0]?.locked === true;
    }, options);
    return once(async () => {
      await queryRunner.query('SELECT pg_advisory_unlock($1::bigint)', [key]);
    });
  }
  if (type === 'mysql' || type === 'mariadb') {
    const mysqlName = `${name}:${String(dataSource.driver.database ?? '')}`;
    // MySQL caps lock names at 64 characters.
    const lock =
      mysqlName.length <= 64 ? mysqlName : `nestjs-k8s:${sha256(mysqlName).slice(0, 40)}`;
    await pollForLock(async () => {
      const rows: { locked: number | string | null }[] = await queryRunner.query(
        'SELECT GET_LOCK(?, 0) AS locked',
        [lock],
      );
      return Number(rows[0]?.locked) === 1;
    }, options);
    return once(async () => {
      await queryRunner.query('SELECT RELEASE_LOCK(?)', [lock]);
    });
  }
  if (type === 'better-sqlite3') {
    const database = String(dataSource.options.database);
    // An in-memory database belongs to this process alone.
    if (database === ':memory:') return once(async () => undefined);
    const Sqlite = (dataSource.driver as unknown as { sqlite: SqliteConstructor }).sqlite;
    // timeout 0: answer SQLITE_BUSY at once instead of blocking the event loop in the busy handler.
    const lockDb = new Sqlite(`${database}.migrate-lock`, { timeout: 0 });
    try {
      await pollForLock(async () => {
        try {
          lockDb.exec('BEGIN IMMEDIATE');
          return true;
        } catch (error) {
          if ((error as { code?: string }).code?.startsWith('SQLITE_BUSY')) return false;
          throw error;
        }
      }, options);
    } catch (error) {
      lockDb.close();
      throw error;
    }
    return once(async () => {
      lockDb.exec('ROLLBACK');
      lockDb.close();
    });
  }
  throw new MigrationLockUnsupportedError(
    `migrate cannot lock a "${type}" database (it locks ${LOCKABLE_TYPES.join(', ')}); ` +
      'run migrations for it from a single process.',
  );
}

/** The PostgreSQL advisory lock key for a lock name: the first 64 bits of its SHA-256. */
export function postgresLockKey(name: string): string {
  return Buffer.from(sha256(name), 'hex').readBigInt64BE(0).toString();
}

function lockName(dataSource: DataSource): string {
  return `nestjs-k8s:migrate:${dataSource.options.migrationsTableName ?? 'migrations'}`;
}

async function pollForLock(
  tryLock: () => Promise<boolean>,
  { timeoutMs, pollIntervalMs = 250, signal, onBusy }: MigrationLockOptions,
): Promise<void> {
  const started = Date.now();
  for (let tries = 0; ; tries++) {
    signal?.throwIfAborted();
    if (await tryLock()) return;
    if (tries === 0) onBusy?.();
    const left = timeoutMs > 0 ? started + timeoutMs - Date.now() : Infinity;
    if (left <= 0) {
      throw new MigrationLockTimeoutError(
        `Timed out after ${timeoutMs / 1000} s waiting for the migration lock: another migrate ` +
          'still holds it. Raise --timeout, or look for a stuck migrate.',
      );
    }
    await delay(Math.min(pollIntervalMs, left), undefined, { signal });
  }
}

function once(release: () => Promise<void>): MigrationLock {
  let released: Promise<void> | undefined;
  return { release: () => (released ??= release()) };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

interface SqliteConstructor {
  new (filename: string, options: { timeout: number }): { exec(sql: string): void; close(): void };
}
