import type { DataSource, DataSourceOptions } from 'typeorm';
import { maskCredentials, secretsOf } from './mask-credentials.js';

/**
 * Why a data source is not usable. `unreachable` may pass by waiting; the others will not
 * (see {@link problemIsFinal}).
 */
export type MigrationProblem =
  'unreachable' | 'authentication' | 'unknown-database' | 'configuration';

/** The migration state of one data source. */
export interface DataSourceMigrationStatus {
  /** Which data source: its type, host, port and database (never credentials). */
  name: string;
  /** Whether the data source could be used: connected, and its migrations read. */
  reachable: boolean;
  /** What went wrong, credentials masked; unset when reachable. */
  reason?: string;
  /** The kind of problem; unset when reachable. */
  problem?: MigrationProblem;
  /** Migrations not applied yet, by class name, in the order `migrate` would run them. */
  pending: string[];
}

/**
 * One data source as the latest check found it, reduced to numbers: what
 * `MigrationsHealthIndicator.lastChecked()` keeps and `registerMigrationsMetrics` exports.
 */
export interface CheckedDataSource {
  /** Which data source: its type, host, port and database (never credentials). */
  readonly name: string;
  /** Whether its migrations could be read; when not, `pending` is unknown (0). */
  readonly reachable: boolean;
  /** How many migrations were pending. */
  readonly pending: number;
  /** When the check ended, epoch ms. */
  readonly checkedAt: number;
}

/** The migration state of every data source checked. */
export interface MigrationCheckResult {
  /** True when every data source is reachable and has no pending migration. */
  ready: boolean;
  dataSources: DataSourceMigrationStatus[];
}

/**
 * Check, read-only, whether each data source is reachable and which of its migrations are
 * pending: usable from code and health checks on the app's own, initialized data sources.
 * Nothing is written: a missing migrations table means every migration is pending, it is not
 * created. A data source that is not initialized is reported unreachable (this function does
 * not connect; the `checkmigrations` command owns its own connection attempts).
 */
export async function checkMigrations(
  dataSources: DataSource | readonly DataSource[],
): Promise<MigrationCheckResult> {
  const list = Array.isArray(dataSources) ? dataSources : [dataSources as DataSource];
  const statuses = await Promise.all(
    list.map((dataSource) =>
      dataSource.isInitialized
        ? migrationStatus(
            dataSource,
            describeDataSource(dataSource.options),
            secretsOf(dataSource.options),
          )
        : {
            name: describeDataSource(dataSource.options),
            reachable: false,
            problem: 'unreachable' as const,
            reason: 'the data source is not initialized',
            pending: [],
          },
    ),
  );
  return { ready: statuses.every(isReady), dataSources: statuses };
}

/** Whether a data source is usable and has nothing pending. */
export function isReady(status: DataSourceMigrationStatus): boolean {
  return status.reachable && status.pending.length === 0;
}

/** Why a data source with no migrations at all is refused. */
export const NO_MIGRATIONS = "no migrations found; check the data source's `migrations` option";

/**
 * The status of one initialized data source: its pending migrations, or why they could not be
 * read. A data source with no migrations at all is a configuration problem (a wrong glob or an
 * empty list would otherwise pass as "complete").
 */
export async function migrationStatus(
  dataSource: DataSource,
  name: string,
  secrets: readonly string[],
): Promise<DataSourceMigrationStatus> {
  if (dataSource.migrations.length === 0) {
    return { name, reachable: false, problem: 'configuration', reason: NO_MIGRATIONS, pending: [] };
  }
  try {
    return { name, reachable: true, pending: await pendingMigrations(dataSource) };
  } catch (error) {
    return { name, pending: [], ...describeFailure(error, secrets) };
  }
}

/**
 * Names of the migrations of an initialized data source that are not applied yet. Reads only:
 * a missing migrations table means every migration is pending, and it is not created. TypeORM
 * 1 and 0.3.29+ answer `getPendingMigrations()` that way themselves; earlier 0.3 releases
 * create the table first (and `showMigrations()` does on every version), hence the `hasTable`
 * looked up here before asking.
 */
export async function pendingMigrations(dataSource: DataSource): Promise<string[]> {
  const { MigrationExecutor } = await import('typeorm');
  const queryRunner = dataSource.createQueryRunner('master');
  try {
    const executor = new MigrationExecutor(dataSource, queryRunner);
    const pending = (await queryRunner.hasTable(migrationsTable(dataSource)))
      ? await executor.getPendingMigrations()
      : // Protected in the typings of both lines, public in their code: the configured list.
        (executor as unknown as { getMigrations(): { name: string }[] }).getMigrations();
    return pending.map((migration) => migration.name);
  } finally {
    await queryRunner.release();
  }
}

/** The migrations table's full name, as `MigrationExecutor` builds it. */
function migrationsTable(dataSource: DataSource): string {
  const { driver } = dataSource;
  const schema = (driver.options as { schema?: string }).schema;
  return driver.buildTableName(
    dataSource.options.migrationsTableName ?? 'migrations',
    schema,
    driver.database,
  );
}

/** Whether waiting can fix this problem: only an unreachable database may come up. */
export function problemIsFinal(problem: MigrationProblem): boolean {
  return problem !== 'unreachable';
}

/** A short, credential-free name for a data source: `postgres 10.0.0.5:5432/app`. */
export function describeDataSource(options: DataSourceOptions): string {
  const o = options as unknown as Record<string, unknown>;
  const type = String(o.type);
  if (/sqlite|sqljs|capacitor|cordova|expo|nativescript|react-native/.test(type)) {
    return `${type} ${String(o.database ?? ':memory:')}`;
  }
  let host = o.host as string | undefined;
  let port = o.port as number | string | undefined;
  let database = o.database as string | undefined;
  if (typeof o.url === 'string') {
    // TypeORM lets the URL's parts win over the separate options.
    try {
      const url = new URL(o.url);
      host = url.hostname || host;
      port = url.port || port;
      database = decodeURIComponent(url.pathname.slice(1)) || database;
    } catch {
      return `${type} (unparseable url)`;
    }
  }
  const defaultPort = /postgres|cockroach/.test(type)
    ? 5432
    : /mysql|mariadb/.test(type)
      ? 3306
      : '';
  return `${type} ${host ?? 'localhost'}:${port ?? defaultPort}/${database ?? ''}`;
}

// Driver error codes that waiting will not fix.
const AUTHENTICATION_CODES = new Set([
  '28P01', // pg invalid_password
  '28000', // pg invalid_authorization_specification (unknown role, no pg_hba.conf entry)
  '42501', // pg insufficient_privilege (no CONNECT on the database)
  'ER_ACCESS_DENIED_ERROR', // 1045
  'ER_DBACCESS_DENIED_ERROR', // 1044
  'ER_ACCESS_DENIED_NO_PASSWORD_ERROR',
  'ER_NOT_SUPPORTED_AUTH_MODE',
  'ER_HOST_NOT_PRIVILEGED', // 1130: this client host may not connect at all
  // Connected, but the user may not do what `migrate` needs (CREATE, ALTER, …).
  'ER_TABLEACCESS_DENIED_ERROR', // 1142
  'ER_COLUMNACCESS_DENIED_ERROR', // 1143
  'ER_SPECIFIC_ACCESS_DENIED_ERROR', // 1227
]);
const UNKNOWN_DATABASE_CODES = new Set(['3D000', 'ER_BAD_DB_ERROR']);
const CONFIGURATION_CODES = new Set([
  'SQLITE_CANTOPEN',
  'SQLITE_NOTADB',
  'SQLITE_PERM',
  'SQLITE_READONLY',
  'ERR_INVALID_URL',
  'ERR_INVALID_ARG_TYPE',
  'ERR_INVALID_ARG_VALUE',
  // TLS: the certificate will not become valid by waiting.
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'HANDSHAKE_NO_SSL_SUPPORT', // mysql2, when the server has no TLS
]);

/**
 * Sort an error from connecting or querying into a {@link MigrationProblem}. Anything not
 * known to be final counts as `unreachable`, so an unfamiliar network failure is waited out
 * rather than failing a pod's start for good.
 */
export function classifyError(error: unknown): MigrationProblem {
  const err = error as { code?: unknown; driverError?: unknown; message?: unknown } | undefined;
  if (err && typeof err === 'object' && err.driverError) return classifyError(err.driverError);
  const code = typeof err?.code === 'string' ? err.code : undefined;
  const message = typeof err?.message === 'string' ? err.message : '';
  // A file named in the options (a TLS certificate or key) that cannot be read. Only `open`:
  // connecting to a Unix socket that is not there yet is also ENOENT, and may pass.
  const syscall = (error as { syscall?: unknown } | undefined)?.syscall;
  if ((code === 'ENOENT' || code === 'EACCES') && syscall === 'open') return 'configuration';
  if (code && AUTHENTICATION_CODES.has(code)) return 'authentication';
  if (code && UNKNOWN_DATABASE_CODES.has(code)) return 'unknown-database';
  if (code && CONFIGURATION_CODES.has(code)) return 'configuration';
  // pg, when the server wants a password and none was configured.
  if (/^SASL: .*password/.test(message)) return 'authentication';
  // pg and mysql2 asked for TLS by a server that has none: a setting to change, not an outage.
  if (/does not support (SSL|secure conn)/i.test(message)) return 'configuration';
  if (error instanceof TypeError || error instanceof RangeError) return 'configuration';
  // TypeORM's own errors (missing driver, bad entity or migration metadata) are setup mistakes.
  if (isTypeormError(error)) return 'configuration';
  return 'unreachable';
}

/** The status fields for a failed attempt, with a one-line reason and credentials masked. */
export function describeFailure(
  error: unknown,
  secrets: readonly string[],
): Pick<DataSourceMigrationStatus, 'reachable' | 'reason' | 'problem'> {
  const problem = classifyError(error);
  return { reachable: false, problem, reason: maskCredentials(errorLine(error), secrets) };
}

/** An error as one line: its message (or code, or name), with its code appended. */
export function errorLine(error: unknown): string {
  if (!(error instanceof Error)) return String(error).replace(/\s+/g, ' ').trim();
  const err = error as Error & { code?: unknown; errors?: unknown };
  // Node's happy-eyeballs connect rejects with an AggregateError whose message is empty.
  let text = err.message;
  if (!text && Array.isArray(err.errors)) {
    text = err.errors
      .map((inner: unknown) => (inner as Error)?.message)
      .filter(Boolean)
      .join('; ');
  }
  if (!text) text = typeof err.code === 'string' ? err.code : err.name;
  if (typeof err.code === 'string' && !text.includes(err.code)) text = `${text} (${err.code})`;
  return text.replace(/\s+/g, ' ').trim();
}

function isTypeormError(error: unknown): boolean {
  for (let proto = error; proto; proto = Object.getPrototypeOf(proto)) {
    const name = (proto as { constructor?: { name?: string } }).constructor?.name;
    if (name === 'QueryFailedError') return false;
    if (name === 'TypeORMError') return true;
  }
  return false;
}
