import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DataSource, DataSourceOptions, Logger } from 'typeorm';
import { withDeadline } from '../util/deadline.js';
import { configurationProblem, noAnswer } from './command-messages.js';
import type { K8sDataSourceInput } from './command-options.js';
import { secretsOf } from './mask-credentials.js';
import {
  NO_MIGRATIONS,
  describeDataSource,
  describeFailure,
  errorLine,
  migrationStatus,
} from './migration-check.js';
import type { DataSourceMigrationStatus } from './migration-check.js';

const ignore = (): void => undefined;
const SILENT_LOGGER: Logger = {
  logQuery: ignore,
  logQueryError: ignore,
  logQuerySlow: ignore,
  logSchemaBuild: ignore,
  logMigration: ignore,
  log: ignore,
};

/** An error while building data sources from the app's options, with the secrets to mask. */
export class ConfigurationError extends Error {
  constructor(
    cause: unknown,
    readonly secrets: string[],
  ) {
    super(errorLine(cause), { cause });
  }
}

/**
 * A data source owned by a command: built from the app's options with the command's
 * overrides (the command decides what runs and what is printed), connected on demand.
 */
export class CommandDataSource {
  private current: DataSource | undefined;
  private connecting: Promise<DataSourceMigrationStatus | undefined> | undefined;
  private checking = 0;

  private constructor(
    readonly name: string,
    readonly type: string,
    readonly secrets: string[],
    private readonly hasMigrations: boolean,
    private readonly build: (options?: Partial<DataSourceOptions>) => DataSource,
    private missingSqliteFile: string | undefined,
    private readonly missingDirectory: string | undefined,
  ) {}

  /** Builds (without connecting); throws {@link ConfigurationError} on options TypeORM refuses. */
  static async create(
    input: K8sDataSourceInput,
    connectTimeout: number,
    command: 'checkmigrations' | 'migrate',
  ): Promise<CommandDataSource> {
    const given = isDataSource(input) ? input.options : input;
    const secrets = secretsOf(given);
    const { DataSource: DataSourceClass } = await import('typeorm');
    const type = given.type as string;
    const database = (given as { database?: unknown }).database;
    const sqliteFile =
      /sqlite/.test(type) && typeof database === 'string' && database !== ':memory:'
        ? database
        : undefined;
    const checkedSqliteFile = command === 'checkmigrations' ? sqliteFile : undefined;
    const overrides = driverOverrides(given, connectTimeout, command, checkedSqliteFile);
    const build = (extra: Partial<DataSourceOptions> = {}): DataSource => {
      try {
        return new DataSourceClass({ ...given, ...overrides, ...extra } as DataSourceOptions);
      } catch (error) {
        throw new ConfigurationError(error, secrets);
      }
    };
    const missing =
      checkedSqliteFile && !existsSync(checkedSqliteFile) ? checkedSqliteFile : undefined;
    // TypeORM would create the missing directories of a SQLite file: a typo or an unmounted
    // volume would then become a fresh, empty database. Neither command creates them.
    const directory = sqliteFile ? dirname(sqliteFile) : undefined;
    const missingDirectory = directory && !existsSync(directory) ? directory : undefined;
    const target = new CommandDataSource(
      describeDataSource(given),
      type,
      secrets,
      hasMigrationsOption(given.migrations),
      build,
      missing,
      missingDirectory,
    );
    // Fails now, before any attempt, on a missing driver or unknown type.
    target.current = missing
      ? build({ database: ':memory:', readonly: false } as Partial<DataSourceOptions>)
      : build();
    return target;
  }

  get dataSource(): DataSource {
    return this.current!;
  }

  /** A problem found in the options alone, before connecting. */
  setupProblem(): DataSourceMigrationStatus | undefined {
    if (!this.hasMigrations) return configurationProblem(this.name, NO_MIGRATIONS);
    if (this.missingDirectory) {
      return configurationProblem(
        this.name,
        `the directory ${this.missingDirectory} does not exist (the commands do not create it; create it or mount its volume)`,
      );
    }
    return undefined;
  }

  /** Whether a connection or a check is still in flight (one that gave up may run on). */
  get busy(): boolean {
    return this.connecting !== undefined || this.checking > 0;
  }

  /** One check attempt, reported as "no answer" when it takes longer than `limitMs`. */
  check(limitMs: number): Promise<DataSourceMigrationStatus> {
    this.checking++;
    const once = this.checkOnce()
      .catch((error: unknown) => this.failed(error))
      .finally(() => this.checking--);
    return withDeadline(once, limitMs, () => noAnswer(this.name, limitMs));
  }

  /**
   * A SQLite file that does not exist yet has every migration pending: that is answered from
   * an in-memory twin with the same migrations, creating no file.
   */
  private async checkOnce(): Promise<DataSourceMigrationStatus> {
    if (this.missingSqliteFile && existsSync(this.missingSqliteFile)) {
      // A migrate created the file while we waited: look at the real thing from now on.
      await this.close();
      this.missingSqliteFile = undefined;
      this.current = this.build();
    }
    const failure = await this.connect();
    return failure ?? migrationStatus(this.dataSource, this.name, this.secrets);
  }

  /**
   * Initialize unless already done; resolves to a failed status, or undefined when connected.
   * Single-flight: a caller that gave up on an attempt leaves it running, and the next caller
   * joins it, as two initialize() calls at once on one DataSource would leak a pool.
   */
  connect(): Promise<DataSourceMigrationStatus | undefined> {
    const dataSource = this.dataSource;
    if (dataSource.isInitialized) return Promise.resolve(undefined);
    this.connecting ??= dataSource
      .initialize()
      .then(
        () => undefined,
        (error: unknown) => this.failed(error),
      )
      .finally(() => {
        this.connecting = undefined;
      });
    return this.connecting;
  }

  /** The status for an error met while connecting or reading, credentials masked. */
  failed(error: unknown): DataSourceMigrationStatus {
    return { name: this.name, pending: [], ...describeFailure(error, this.secrets) };
  }

  async close(): Promise<void> {
    await this.connecting;
    if (this.current?.isInitialized) await this.current.destroy();
  }
}

/**
 * What a command sets over the app's options. The option names are the same in TypeORM 0.3
 * and 1 for every driver touched here (`connectTimeoutMS` for postgres, `connectTimeout` for
 * mysql/mariadb, `fileMustExist`/`readonly`/`enableWAL` for better-sqlite3).
 */
function driverOverrides(
  given: DataSourceOptions,
  connectTimeout: number,
  command: 'checkmigrations' | 'migrate',
  checkedSqliteFile: string | undefined,
): Record<string, unknown> {
  const type = given.type as string;
  const overrides: Record<string, unknown> = {
    // The command decides what runs (never the app's auto-migrate/sync) and what is printed:
    // TypeORM logs migration failures unmasked, whatever `logging` says.
    migrationsRun: false,
    synchronize: false,
    dropSchema: false,
    logger: SILENT_LOGGER,
  };
  // One attempt must not stall on an unreachable host for the driver's long default.
  if (/postgres/.test(type)) {
    overrides.connectTimeoutMS =
      (given as { connectTimeoutMS?: number }).connectTimeoutMS ?? connectTimeout;
  } else if (/mysql|mariadb/.test(type)) {
    overrides.connectTimeout =
      (given as { connectTimeout?: number }).connectTimeout ?? connectTimeout;
  }
  if (command === 'checkmigrations') {
    // A check writes nothing: no `CREATE EXTENSION` (PostgreSQL's afterConnect), no switch of
    // a SQLite file to WAL, no query-result cache (its table, or a Redis connection).
    Object.assign(overrides, { installExtensions: false, enableWAL: false, cache: false });
    // Only an existing SQLite file is opened, read-only: opening creates the file otherwise.
    if (checkedSqliteFile) Object.assign(overrides, { fileMustExist: true, readonly: true });
  }
  return overrides;
}

function isDataSource(input: K8sDataSourceInput): input is DataSource {
  const candidate = input as Partial<DataSource>;
  return typeof candidate.initialize === 'function' && typeof candidate.options === 'object';
}

function hasMigrationsOption(migrations: unknown): boolean {
  if (!migrations || typeof migrations !== 'object') return false;
  return Array.isArray(migrations) ? migrations.length > 0 : Object.keys(migrations).length > 0;
}
