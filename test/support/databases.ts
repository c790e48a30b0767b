import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { postgresLockKey } from '../../lib/migrations/migration-lock.js';
import { serviceAvailable } from './services.js';

// better-sqlite3 ships no types; this is the little the tests use.
interface SqliteStatement {
  reader: boolean;
  all(): unknown[];
  run(): unknown;
}
const Database = createRequire(import.meta.url)('better-sqlite3') as new (
  path: string,
  options?: { fileMustExist?: boolean; timeout?: number },
) => { prepare(sql: string): SqliteStatement; exec(sql: string): void; close(): void };

/**
 * The lock `migrate` takes, named as lib/migrations/migration-lock.ts names it (written out
 * here so the tests hold it from an independent session, with plain SQL).
 */
const LOCK_NAME = 'nestjs-k8s:migrate:migrations';

/** The servers this machine (and CI) runs; tests create their own databases on them. */
export const POSTGRES = { host: '127.0.0.1', port: 5432, adminUser: 'postgres' };
export const MARIADB = { host: '127.0.0.1', port: 3306, adminUser: 'root' };

/** A database that exists only for one test file. */
export interface ThrowAwayDatabase {
  /** Database name (SQLite: the file path). */
  name: string;
  /** `DATABASE_URL` for the sample, with a password in it wherever the server allows one. */
  url: string;
  /** The password in `url`: it must never appear in any output. */
  password: string;
  /** Run SQL as an administrator, inside this database. */
  query<T = Record<string, unknown>>(sql: string): Promise<T[]>;
  /** Whether a table exists in this database. */
  hasTable(table: string): Promise<boolean>;
  /** `url` with another port (to reach it through a proxy, or nowhere). */
  urlWithPort(port: number): string;
  /** Take the lock `migrate` takes, from a session of our own; resolves to its release. */
  holdMigrationLock(): Promise<() => Promise<void>>;
  drop(): Promise<void>;
}

/** A name no other test run uses. */
export function throwAwayName(prefix = 'k8s_mig'): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

/**
 * A password with the characters a URL must encode and a naive mask gets wrong
 * (`@ : / # %` and a space), so that "never printed" tests can fail.
 */
function throwAwayPassword(): string {
  return `P@w:/d#5% ${randomBytes(6).toString('hex')}`;
}

export async function postgresAvailable(): Promise<boolean> {
  const client = new pg.Client({ ...adminPg('postgres'), connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * A fresh PostgreSQL database. The server trusts 127.0.0.1 (see pg_hba.conf), so the password
 * in `url` is not checked, but it still proves the commands never print it.
 */
export async function createPostgresDatabase(): Promise<ThrowAwayDatabase> {
  const name = throwAwayName();
  const password = throwAwayPassword();
  await withPostgresAdmin('postgres', (client) => client.query(`CREATE DATABASE ${name}`));
  const urlWithPort = (port: number): string =>
    `postgres://postgres:${encodeURIComponent(password)}@${POSTGRES.host}:${port}/${name}`;
  const query = async <T>(sql: string): Promise<T[]> =>
    withPostgresAdmin(name, async (client) => (await client.query(sql)).rows as T[]);
  return {
    name,
    password,
    url: urlWithPort(POSTGRES.port),
    urlWithPort,
    query,
    hasTable: async (table) =>
      (
        await query<{ found: boolean }>(
          `SELECT to_regclass('public.${table}') IS NOT NULL AS found`,
        )
      )[0].found,
    holdMigrationLock: async () => {
      // Advisory locks belong to the session and to the database it is connected to.
      const client = new pg.Client(adminPg(name));
      // Dropping the database ends this session if the test could not release it (it failed
      // or timed out first): expected, not an uncaught error in whatever test runs next.
      client.on('error', () => undefined);
      await client.connect();
      await client.query('SELECT pg_advisory_lock($1::bigint)', [postgresLockKey(LOCK_NAME)]);
      return () => client.end();
    },
    drop: async () => {
      await withPostgresAdmin('postgres', (client) =>
        client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
      );
    },
  };
}

export async function mariadbAvailable(): Promise<boolean> {
  try {
    const connection = await mysql.createConnection({ ...adminMysql(), connectTimeout: 2_000 });
    await connection.end();
    return true;
  } catch {
    return false;
  }
}

/** A fresh MariaDB database and a user (with a password) that may use only it. */
export async function createMariadbDatabase(): Promise<ThrowAwayDatabase> {
  const name = throwAwayName();
  const password = throwAwayPassword();
  await withMariadbRoot(undefined, async (connection) => {
    await connection.query(`CREATE DATABASE ${name}`);
    await connection.query(`CREATE USER '${name}'@'%' IDENTIFIED BY '${password}'`);
    await connection.query(`GRANT ALL ON ${name}.* TO '${name}'@'%'`);
  });
  const urlWithPort = (port: number): string =>
    `mariadb://${name}:${encodeURIComponent(password)}@${MARIADB.host}:${port}/${name}`;
  const query = <T>(sql: string): Promise<T[]> =>
    withMariadbRoot(name, async (connection) => (await connection.query(sql))[0] as T[]);
  return {
    name,
    password,
    url: urlWithPort(MARIADB.port),
    urlWithPort,
    query,
    hasTable: async (table) =>
      (
        await query<{ found: number }>(
          `SELECT COUNT(*) AS found FROM information_schema.tables WHERE table_schema = '${name}' AND table_name = '${table}'`,
        )
      )[0].found > 0,
    holdMigrationLock: async () => {
      // GET_LOCK is server-wide: `migrate` adds the database name.
      const connection = await mysql.createConnection(adminMysql());
      // As for PostgreSQL: a session the test could not release may be ended under it.
      connection.on('error', () => undefined);
      const [rows] = await connection.query('SELECT GET_LOCK(?, 0) AS locked', [
        `${LOCK_NAME}:${name}`,
      ]);
      if (Number((rows as { locked: unknown }[])[0].locked) !== 1) {
        throw new Error('the migration lock is already held');
      }
      return () => connection.end();
    },
    drop: () =>
      withMariadbRoot(undefined, async (connection) => {
        await connection.query(`DROP DATABASE IF EXISTS ${name}`);
        await connection.query(`DROP USER IF EXISTS '${name}'@'%'`);
      }),
  };
}

/** A SQLite file path in a fresh directory; the file itself does not exist yet. */
export function createSqliteDatabase(): ThrowAwayDatabase {
  const dir = mkdtempSync(join(tmpdir(), 'k8s-mig-'));
  const path = join(dir, 'app.sqlite');
  const query = async <T>(sql: string): Promise<T[]> => {
    const db = new Database(path, { fileMustExist: true });
    try {
      const statement = db.prepare(sql);
      return (statement.reader ? statement.all() : (statement.run(), [])) as T[];
    } finally {
      db.close();
    }
  };
  return {
    name: path,
    url: path,
    password: '',
    query,
    hasTable: async (table) => {
      try {
        return (
          (await query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = '${table}'`))
            .length > 0
        );
      } catch {
        return false; // no file, no table
      }
    },
    urlWithPort: () => path,
    holdMigrationLock: async () => {
      const lock = new Database(`${path}.migrate-lock`, { timeout: 0 });
      lock.exec('BEGIN IMMEDIATE');
      return async () => lock.close();
    },
    drop: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

function adminPg(database: string): pg.ClientConfig {
  return { host: POSTGRES.host, port: POSTGRES.port, user: POSTGRES.adminUser, database };
}

/** `use` a PostgreSQL connection as the admin user to `database`, closed afterwards. */
export async function withPostgresAdmin<T>(
  database: string,
  use: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client(adminPg(database));
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

function adminMysql(database?: string): mysql.ConnectionOptions {
  return { host: MARIADB.host, port: MARIADB.port, user: MARIADB.adminUser, database };
}

/** `use` a MariaDB connection as root (to `database`, or none), closed afterwards. */
export async function withMariadbRoot<T>(
  database: string | undefined,
  use: (connection: mysql.Connection) => Promise<T>,
): Promise<T> {
  const connection = await mysql.createConnection(adminMysql(database));
  try {
    return await use(connection);
  } finally {
    await connection.end();
  }
}

/** Whether PostgreSQL tests run: under CI a server that does not answer fails the run. */
export async function postgresReady(): Promise<boolean> {
  return serviceAvailable(
    'PostgreSQL',
    await postgresAvailable(),
    `expected on ${POSTGRES.host}:${POSTGRES.port}, user ${POSTGRES.adminUser}`,
  );
}

/** Whether MariaDB tests run: under CI a server that does not answer fails the run. */
export async function mariadbReady(): Promise<boolean> {
  return serviceAvailable(
    'MariaDB',
    await mariadbAvailable(),
    `expected on ${MARIADB.host}:${MARIADB.port}, user ${MARIADB.adminUser} without password`,
  );
}
