import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { constants as osConstants } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import type { DataSource, DataSourceOptions, Logger } from 'typeorm';
import {
  MigrationFailedError,
  MigrationLockTimeoutError,
  MigrationLockUnsupportedError,
  MigrationUsageError,
} from '../errors/migration.errors.js';
import {
  CHECK_MIGRATIONS_USAGE,
  MIGRATE_USAGE,
  commandOf,
  misplacedCommand,
  parseCommandArgs,
} from './command-args.js';
import type { CheckMigrationsArgs, MigrateArgs } from './command-args.js';
import { runMigrationsLocked } from './migrate.js';
import {
  NO_MIGRATIONS,
  describeDataSource,
  describeFailure,
  errorLine,
  isReady,
  migrationStatus,
  problemIsFinal,
} from './migration-check.js';
import type { DataSourceMigrationStatus } from './migration-check.js';
import { LOCKABLE_TYPES } from './migration-lock.js';
import { maskCredentials, secretsOf } from './mask-credentials.js';

/** A data source as the app configures it: an (uninitialized) `DataSource` or its options. */
export type K8sDataSourceInput = DataSource | DataSourceOptions;

/** Options of {@link runK8sCommand}. */
export interface K8sCommandOptions {
  /**
   * The data sources to check and migrate, from the same place the app takes them (like the
   * TypeORM CLI's exported `DataSource`). Called only when a command runs. Only their options
   * are used: each command builds, connects and destroys its own `DataSource`.
   */
  dataSources: () =>
    | K8sDataSourceInput
    | readonly K8sDataSourceInput[]
    | Promise<K8sDataSourceInput | readonly K8sDataSourceInput[]>;
  /** The command line; its first word names the command. @default process.argv.slice(2) */
  argv?: readonly string[];
  /**
   * Time limit of one attempt in ms: connecting and reading the migrations of a data source (a
   * database that accepts connections but never answers is reported as such, and waiting goes
   * on). Also the driver's connect timeout for data sources whose options set none. @default 5000
   */
  connectTimeout?: number;
}

/** Where a command writes its lines. */
export interface K8sCommandIo {
  out(line: string): void;
  err(line: string): void;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

const ignore = (): void => undefined;
const SILENT_LOGGER: Logger = {
  logQuery: ignore,
  logQueryError: ignore,
  logQuerySlow: ignore,
  logSchemaBuild: ignore,
  logMigration: ignore,
  log: ignore,
};

const stdio: K8sCommandIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/**
 * Call first in `main.ts`. When the first argument (after an optional `--`) is
 * `checkmigrations` or `migrate`, run that command and exit the process with its code, before
 * any Nest module is booted (so no HTTP server, cache pool or @nestjs/typeorm connection
 * retries); otherwise return at once. A command line that names a command elsewhere, in
 * another case, or has `--wait`/`--interval` without one, exits 2 with a usage line instead
 * of starting the app.
 *
 * ```ts
 * await runK8sCommand({ dataSources: () => dataSourceOptions() });
 * const app = await NestFactory.create(AppModule);
 * ```
 */
export async function runK8sCommand(options: K8sCommandOptions): Promise<void> {
  const argv = options.argv ?? process.argv.slice(2);
  if (!commandOf(argv)) {
    const misplaced = misplacedCommand(argv);
    if (!misplaced) return;
    stdio.err(misplaced);
    process.exit(2);
  }
  // Node prints some warnings (pg's TLS "SECURITY WARNING") over many lines: one line each.
  process.removeAllListeners('warning');
  process.on('warning', (warning) =>
    stdio.err(`Warning: ${maskCredentials(errorLine(warning), [])}`),
  );
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => controller.abort(signal);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  let code: number;
  try {
    code = await executeK8sCommand(argv, options, { signal: controller.signal });
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
  // The one place allowed to exit: a command's meaning is its exit code, and in-flight driver
  // sockets (an attempt cut short by a timeout or a signal) must not keep the process alive.
  process.exit(code);
}

/**
 * Run a command (`argv[0]` is `checkmigrations` or `migrate`) and resolve to its exit code:
 * 0 ready/migrated, 1 not ready (pending, unreachable, timed out, lock timeout, a failed
 * migration), 2 a problem waiting will not fix, 128 + n when interrupted by signal n (the
 * signal name is `signal`'s abort reason). Never exits the process.
 */
export async function executeK8sCommand(
  argv: readonly string[],
  options: K8sCommandOptions,
  { io = stdio, signal }: { io?: K8sCommandIo; signal?: AbortSignal } = {},
): Promise<number> {
  let args: CheckMigrationsArgs | MigrateArgs;
  try {
    args = parseCommandArgs(argv);
  } catch (error) {
    if (!(error instanceof MigrationUsageError)) throw error;
    io.err(error.message);
    return 2;
  }
  if (args.help) {
    io.out(args.command === 'checkmigrations' ? CHECK_MIGRATIONS_USAGE : MIGRATE_USAGE);
    return 0;
  }

  const connectTimeout = options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS;
  let targets: CommandDataSource[];
  try {
    // The user's factory may itself wait (on a secret, a config service): a signal ends it.
    const inputs = await untilAborted(
      Promise.resolve().then(() => options.dataSources()),
      signal,
    );
    if (inputs === ABORTED) return interrupted(signal, 'while reading the data source options', io);
    const list = (Array.isArray(inputs) ? inputs : [inputs]) as K8sDataSourceInput[];
    if (list.length === 0) throw new Error('no data source is configured');
    targets = await Promise.all(
      list.map((input) => CommandDataSource.create(input, connectTimeout, args.command)),
    );
  } catch (error) {
    const secrets = error instanceof ConfigurationError ? error.secrets : [];
    io.err(`${args.command}: configuration error: ${maskCredentials(errorLine(error), secrets)}`);
    return 2;
  }

  try {
    const unusable = targets.map((target) => target.setupProblem()).find(Boolean);
    if (unusable) {
      io.err(finalProblemLine(unusable));
      return 2;
    }
    return args.command === 'checkmigrations'
      ? await checkCommand(args, targets, connectTimeout, io, signal)
      : await migrateCommand(args, targets, connectTimeout, io, signal);
  } finally {
    // Bounded: an attempt cut short (by a timeout, a final problem elsewhere or a signal) may
    // still be setting up a connection that never completes; then exiting promptly matters
    // more than a tidy close.
    const cutShort = signal?.aborted || targets.some((target) => target.busy);
    await Promise.race([
      Promise.allSettled(targets.map((target) => target.close())),
      delay(cutShort ? 250 : 2_000),
    ]);
  }
}

async function checkCommand(
  args: CheckMigrationsArgs,
  targets: CommandDataSource[],
  attemptMs: number,
  io: K8sCommandIo,
  signal: AbortSignal | undefined,
): Promise<number> {
  const started = Date.now();
  const deadline = args.timeout > 0 ? started + args.timeout * 1000 : Infinity;
  const stop = stopWhen(args.timeout * 1000, signal);
  let notReady = 'no attempt finished';
  const ended = (reason: 'timeout' | 'signal'): number => {
    if (reason === 'signal')
      return interrupted(signal, `while waiting; not ready: ${notReady}`, io);
    io.err(`Timed out after ${args.timeout} s, not ready: ${notReady}`);
    return 1;
  };
  try {
    for (let attempt = 1; ; attempt++) {
      // Each attempt ends by its own deadline, so a database that never answers still gives
      // one progress line per attempt.
      const limit = Math.max(1, Math.min(attemptMs, deadline - Date.now()));
      const attemptStarted = Date.now();
      const answered = new Map<CommandDataSource, DataSourceMigrationStatus>();
      const outcome = new Promise<DataSourceMigrationStatus[]>((resolve) => {
        for (const target of targets) {
          void target.check(limit).then((status) => {
            answered.set(target, status);
            // What waiting cannot fix is told at once, without waiting for the other sources.
            if (status.problem && problemIsFinal(status.problem)) resolve([status]);
            else if (answered.size === targets.length)
              resolve(targets.map((t) => answered.get(t)!));
          });
        }
      });
      const statuses = await Promise.race([outcome, stop.reached]);
      if (typeof statuses === 'string') {
        if (answered.size < targets.length) {
          // Cut short: what this attempt learned so far, and which sources did not answer.
          const late = Date.now() - attemptStarted;
          notReady = targets
            .map((target) => answered.get(target) ?? noAnswer(target.name, late))
            .filter((status) => !isReady(status))
            .map(describeNotReady)
            .join('; ');
        }
        return ended(statuses);
      }

      const final = statuses.find((status) => status.problem && problemIsFinal(status.problem));
      if (final) {
        io.err(finalProblemLine(final));
        return 2;
      }
      const waiting = statuses.filter((status) => !isReady(status));
      if (waiting.length === 0) {
        io.out('Migrations complete.');
        return 0;
      }
      notReady = waiting.map(describeNotReady).join('; ');
      if (!args.wait) {
        io.err(`Not ready: ${notReady}`);
        return 1;
      }
      const elapsed = ((Date.now() - started) / 1000).toFixed(1);
      io.out(`Waiting (attempt ${attempt}, ${elapsed} s elapsed): ${notReady}`);
      const slept = await Promise.race([
        delay(args.interval * 1000, 'slept' as const),
        stop.reached,
      ]);
      if (slept !== 'slept') return ended(slept);
    }
  } finally {
    stop.dispose();
  }
}

async function migrateCommand(
  args: MigrateArgs,
  targets: CommandDataSource[],
  connectMs: number,
  io: K8sCommandIo,
  signal: AbortSignal | undefined,
): Promise<number> {
  // Before connecting anything: a database we cannot lock would risk a race.
  const unlockable = targets.find(
    (target) => !(LOCKABLE_TYPES as readonly string[]).includes(target.type),
  );
  if (unlockable) {
    io.err(
      `${unlockable.name}: migrate cannot lock a "${unlockable.type}" database (it locks ` +
        `${LOCKABLE_TYPES.join(', ')}); run migrations for it from a single process.`,
    );
    return 2;
  }
  for (const target of targets) {
    const failure = await untilAborted(
      withDeadline(target.connect(), connectMs, () => noAnswer(target.name, connectMs)),
      signal,
    );
    if (failure === ABORTED) return interrupted(signal, 'while connecting', io);
    if (failure) {
      if (problemIsFinal(failure.problem!)) {
        io.err(finalProblemLine(failure));
        return 2;
      }
      io.err(`Cannot migrate: ${describeNotReady(failure)}`);
      return 1;
    }
    if (target.dataSource.migrations.length === 0) {
      io.err(finalProblemLine(configurationProblem(target.name, NO_MIGRATIONS)));
      return 2;
    }
    let applied: string[];
    // A signal while a migration runs does not cut it short (that is the database's job if the
    // process dies): it is told at once, the migration finishes, and nothing more starts.
    let running: string | undefined;
    let told = false;
    const tell = (): void => {
      if (told || !running || !signal?.aborted) return;
      told = true;
      const rest =
        (target.dataSource.options.migrationsTransactionMode ?? 'all') === 'all'
          ? ' and the rest of its transaction'
          : '';
      io.err(`${String(signal.reason)} received: finishing ${running}${rest} before exiting`);
    };
    signal?.addEventListener('abort', tell, { once: true });
    try {
      applied = await runMigrationsLocked(target.dataSource, {
        timeoutMs: args.timeout * 1000,
        signal,
        onBusy: () =>
          io.out(`Waiting for the migration lock on ${target.name}: another migrate holds it.`),
        onMigration: (name) => {
          running = name;
          tell();
        },
      });
    } catch (error) {
      if (signal?.aborted && !(error instanceof MigrationFailedError)) {
        return interrupted(signal, 'while waiting for the migration lock', io);
      }
      if (error instanceof MigrationFailedError) {
        // Whatever the migration threw (even a TypeError) is the migration's problem: exit 1.
        io.err(migrationFailedLine(target, error));
        return 1;
      }
      if (error instanceof MigrationLockTimeoutError) {
        io.err(`${error.message} (${target.name})`);
        return 1;
      }
      if (error instanceof MigrationLockUnsupportedError) {
        io.err(`${target.name}: ${error.message}`);
        return 2;
      }
      // Before any migration ran: taking the lock or reading the migrations table.
      const status = { name: target.name, pending: [], ...describeFailure(error, target.secrets) };
      if (status.problem === 'unreachable') {
        io.err(`Migrating ${target.name} failed: ${status.reason}`);
        return 1;
      }
      io.err(finalProblemLine(status));
      return 2;
    } finally {
      signal?.removeEventListener('abort', tell);
    }
    if (signal?.aborted && applied.length === 0) {
      return interrupted(signal, `before any migration started on ${target.name}`, io);
    }
    io.out(
      applied.length > 0
        ? `Applied ${plural(applied.length, 'migration')} on ${target.name}: ${applied.join(', ')}.`
        : `No migrations pending on ${target.name}.`,
    );
    if (signal?.aborted) return signalExitCode(signal);
  }
  return 0;
}

function migrationFailedLine(target: CommandDataSource, error: MigrationFailedError): string {
  const reason = maskCredentials(errorLine(error.cause), target.secrets);
  const line = `Migration ${error.migration} failed on ${target.name}: ${reason}.`;
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

/** A data source owned by a command: built from the app's options, connected on demand. */
class CommandDataSource {
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
    const checkedSqliteFile =
      command === 'checkmigrations' &&
      /sqlite/.test(type) &&
      typeof database === 'string' &&
      database !== ':memory:'
        ? database
        : undefined;
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
    const directory =
      /sqlite/.test(type) && typeof database === 'string' && database !== ':memory:'
        ? dirname(database)
        : undefined;
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
      .catch((error: unknown) => ({
        name: this.name,
        pending: [],
        ...describeFailure(error, this.secrets),
      }))
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
        (error: unknown) => ({
          name: this.name,
          pending: [],
          ...describeFailure(error, this.secrets),
        }),
      )
      .finally(() => {
        this.connecting = undefined;
      });
    return this.connecting;
  }

  async close(): Promise<void> {
    await this.connecting;
    if (this.current?.isInitialized) await this.current.destroy();
  }
}

/** An error while building data sources from the app's options, with the secrets to mask. */
class ConfigurationError extends Error {
  constructor(
    cause: unknown,
    readonly secrets: string[],
  ) {
    super(errorLine(cause), { cause });
  }
}

function isDataSource(input: K8sDataSourceInput): input is DataSource {
  const candidate = input as Partial<DataSource>;
  return typeof candidate.initialize === 'function' && typeof candidate.options === 'object';
}

function hasMigrationsOption(migrations: unknown): boolean {
  if (!migrations || typeof migrations !== 'object') return false;
  return Array.isArray(migrations) ? migrations.length > 0 : Object.keys(migrations).length > 0;
}

function configurationProblem(name: string, reason: string): DataSourceMigrationStatus {
  return { name, reachable: false, problem: 'configuration', reason, pending: [] };
}

function noAnswer(name: string, ms: number): DataSourceMigrationStatus {
  const seconds = Math.round(ms / 100) / 10;
  return {
    name,
    reachable: false,
    problem: 'unreachable',
    reason: `no answer within ${seconds} s`,
    pending: [],
  };
}

function describeNotReady(status: DataSourceMigrationStatus): string {
  if (!status.reachable) return `database unreachable: ${status.name}: ${status.reason}`;
  return `${plural(status.pending.length, 'pending migration')} on ${status.name}: ${status.pending.join(', ')}`;
}

function finalProblemLine(status: DataSourceMigrationStatus): string {
  switch (status.problem) {
    case 'authentication':
      return `Access denied on ${status.name}: ${status.reason}. Fix the credentials or the user's privileges; waiting will not help.`;
    case 'unknown-database':
      return `Unknown database on ${status.name}: ${status.reason}. Create it or fix its name; waiting will not help.`;
    default:
      return `Configuration error on ${status.name}: ${status.reason}. Fix the data source options; waiting will not help.`;
  }
}

function interrupted(signal: AbortSignal | undefined, what: string, io: K8sCommandIo): number {
  io.err(`Interrupted by ${String(signal?.reason ?? 'signal')} ${what}`);
  return signalExitCode(signal);
}

/** 128 + the number of the signal named by `signal`'s abort reason (1 when unknown). */
function signalExitCode(signal: AbortSignal | undefined): number {
  const name = String(signal?.reason ?? 'signal');
  const number = (osConstants.signals as Record<string, number | undefined>)[name];
  return number ? 128 + number : 1;
}

const ABORTED = Symbol('aborted');

/** `work`, or {@link ABORTED} as soon as `signal` aborts (the work is left to finish alone). */
async function untilAborted<T>(
  work: Promise<T>,
  signal: AbortSignal | undefined,
): Promise<T | typeof ABORTED> {
  if (!signal) return work;
  const stop = stopWhen(0, signal);
  try {
    return await Promise.race([work, stop.reached.then((): typeof ABORTED => ABORTED)]);
  } finally {
    stop.dispose();
  }
}

/** `work`, or `late()` when it takes longer than `ms` (the work is left to finish alone). */
async function withDeadline<T>(work: Promise<T>, ms: number, late: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<T>((resolve) => {
        timer = setTimeout(() => resolve(late()), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves to `timeout` after `ms` (0 = never) or to `signal` when aborted. */
function stopWhen(
  ms: number,
  signal: AbortSignal | undefined,
): { reached: Promise<'timeout' | 'signal'>; dispose(): void } {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const reached = new Promise<'timeout' | 'signal'>((resolve) => {
    if (ms > 0) timer = setTimeout(() => resolve('timeout'), ms);
    onAbort = () => resolve('signal');
    if (signal?.aborted) resolve('signal');
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  return {
    reached,
    dispose: () => {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    },
  };
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
