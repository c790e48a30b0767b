import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import type { DataSource, DataSourceOptions, Logger } from 'typeorm';
import {
  MigrationLockTimeoutError,
  MigrationLockUnsupportedError,
  MigrationUsageError,
} from '../errors/migration.errors.js';
import {
  CHECK_MIGRATIONS_USAGE,
  MIGRATE_USAGE,
  commandOf,
  parseCommandArgs,
} from './command-args.js';
import type { CheckMigrationsArgs, MigrateArgs } from './command-args.js';
import { runMigrationsLocked } from './migrate.js';
import {
  classifyError,
  describeDataSource,
  describeFailure,
  pendingMigrations,
  problemIsFinal,
} from './migration-check.js';
import type { DataSourceMigrationStatus } from './migration-check.js';
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
  /** Connect timeout of one attempt in ms, for data sources whose options set none. @default 5000 */
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
 * Call first in `main.ts`. When the first argument is `checkmigrations` or `migrate`, run that
 * command and exit the process with its code, before any Nest module is booted (so no HTTP
 * server, cache pool or @nestjs/typeorm connection retries); otherwise return at once.
 *
 * ```ts
 * await runK8sCommand({ dataSources: () => dataSourceOptions() });
 * const app = await NestFactory.create(AppModule);
 * ```
 */
export async function runK8sCommand(options: K8sCommandOptions): Promise<void> {
  const argv = options.argv ?? process.argv.slice(2);
  if (!commandOf(argv)) return;
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

  let targets: CommandDataSource[];
  try {
    const inputs = await options.dataSources();
    const list = (Array.isArray(inputs) ? inputs : [inputs]) as K8sDataSourceInput[];
    if (list.length === 0) throw new Error('no data source is configured');
    const connectTimeout = options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS;
    targets = await Promise.all(
      list.map((input) => CommandDataSource.create(input, connectTimeout, args.command)),
    );
  } catch (error) {
    const secrets = error instanceof ConfigurationError ? error.secrets : [];
    io.err(`${args.command}: configuration error: ${maskCredentials(oneLine(error), secrets)}`);
    return 2;
  }

  try {
    return args.command === 'checkmigrations'
      ? await checkCommand(args, targets, io, signal)
      : await migrateCommand(args, targets, io, signal);
  } finally {
    // Bounded: an attempt cut short by a timeout may still hold a connection being set up.
    await Promise.race([Promise.allSettled(targets.map((target) => target.close())), delay(2_000)]);
  }
}

async function checkCommand(
  args: CheckMigrationsArgs,
  targets: CommandDataSource[],
  io: K8sCommandIo,
  signal: AbortSignal | undefined,
): Promise<number> {
  const started = Date.now();
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
      const statuses = await Promise.race([
        Promise.all(targets.map((target) => target.check())),
        stop.reached,
      ]);
      if (typeof statuses === 'string') return ended(statuses);

      const final = statuses.find((status) => status.problem && problemIsFinal(status.problem));
      if (final) {
        io.err(finalProblemLine(final));
        return 2;
      }
      const waiting = statuses.filter((status) => !status.reachable || status.pending.length > 0);
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
  io: K8sCommandIo,
  signal: AbortSignal | undefined,
): Promise<number> {
  for (const target of targets) {
    const failure = await target.connect();
    if (failure) {
      if (problemIsFinal(failure.problem!)) {
        io.err(finalProblemLine(failure));
        return 2;
      }
      io.err(`Cannot migrate: ${describeNotReady(failure)}`);
      return 1;
    }
    let applied: string[];
    try {
      applied = await runMigrationsLocked(target.dataSource, {
        timeoutMs: args.timeout * 1000,
        signal,
        onBusy: () =>
          io.out(`Waiting for the migration lock on ${target.name}: another migrate holds it.`),
      });
    } catch (error) {
      if (signal?.aborted) return interrupted(signal, 'while waiting for the migration lock', io);
      if (error instanceof MigrationLockTimeoutError) {
        io.err(`${error.message} (${target.name})`);
        return 1;
      }
      if (error instanceof MigrationLockUnsupportedError) {
        io.err(`${target.name}: ${error.message}`);
        return 2;
      }
      const problem = classifyError(error);
      const reason = maskCredentials(oneLine(error), target.secrets);
      if (problem === 'unreachable') {
        // Connected a moment ago: either the connection dropped or a migration's SQL failed.
        io.err(`Migrating ${target.name} failed: ${reason}`);
        return 1;
      }
      io.err(
        finalProblemLine({ name: target.name, problem, reason, reachable: false, pending: [] }),
      );
      return 2;
    }
    io.out(
      applied.length > 0
        ? `Applied ${plural(applied.length, 'migration')} on ${target.name}: ${applied.join(', ')}.`
        : `No migrations pending on ${target.name}.`,
    );
  }
  return 0;
}

/** A data source owned by a command: built from the app's options, connected on demand. */
class CommandDataSource {
  private current: DataSource | undefined;
  private connecting: Promise<unknown> | undefined;

  private constructor(
    readonly name: string,
    readonly secrets: string[],
    private readonly build: (options?: Partial<DataSourceOptions>) => DataSource,
    private missingSqliteFile: string | undefined,
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
    const isSqliteFile =
      /sqlite/.test(type) && typeof database === 'string' && database !== ':memory:';
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
    // A check opens only an existing SQLite file: opening creates the file (and its directory).
    if (isSqliteFile && command === 'checkmigrations') overrides.fileMustExist = true;
    const build = (extra: Partial<DataSourceOptions> = {}): DataSource => {
      try {
        return new DataSourceClass({ ...given, ...overrides, ...extra } as DataSourceOptions);
      } catch (error) {
        throw new ConfigurationError(error, secrets);
      }
    };
    const name = describeDataSource(given);
    const missing =
      isSqliteFile && command === 'checkmigrations' && !existsSync(database) ? database : undefined;
    const target = new CommandDataSource(name, secrets, build, missing);
    // Fails now, before any attempt, on a missing driver or unknown type.
    target.current = missing
      ? build({ database: ':memory:' } as Partial<DataSourceOptions>)
      : build();
    return target;
  }

  get dataSource(): DataSource {
    return this.current!;
  }

  /**
   * One check attempt. A SQLite file that does not exist yet has every migration pending:
   * that is answered from an in-memory twin with the same migrations, creating no file.
   */
  async check(): Promise<DataSourceMigrationStatus> {
    if (this.missingSqliteFile && existsSync(this.missingSqliteFile)) {
      // A migrate created the file while we waited: look at the real thing from now on.
      await this.close();
      this.missingSqliteFile = undefined;
      this.current = this.build();
    }
    const failure = await this.connect();
    if (failure) return failure;
    try {
      return {
        name: this.name,
        reachable: true,
        pending: await pendingMigrations(this.dataSource),
      };
    } catch (error) {
      return { name: this.name, pending: [], ...describeFailure(error, this.secrets) };
    }
  }

  /** Initialize unless already done; resolves to a failed status, or undefined when connected. */
  async connect(): Promise<DataSourceMigrationStatus | undefined> {
    const dataSource = this.dataSource;
    if (dataSource.isInitialized) return undefined;
    try {
      // Never two initialize() calls at once on one DataSource: they would leak a pool.
      this.connecting = dataSource.initialize();
      await this.connecting;
      return undefined;
    } catch (error) {
      return { name: this.name, pending: [], ...describeFailure(error, this.secrets) };
    } finally {
      this.connecting = undefined;
    }
  }

  async close(): Promise<void> {
    await this.connecting?.catch(() => undefined);
    if (this.current?.isInitialized) await this.current.destroy();
  }
}

/** An error while building data sources from the app's options, with the secrets to mask. */
class ConfigurationError extends Error {
  constructor(
    cause: unknown,
    readonly secrets: string[],
  ) {
    super(oneLine(cause), { cause });
  }
}

function isDataSource(input: K8sDataSourceInput): input is DataSource {
  const candidate = input as Partial<DataSource>;
  return typeof candidate.initialize === 'function' && typeof candidate.options === 'object';
}

function describeNotReady(status: DataSourceMigrationStatus): string {
  if (!status.reachable) return `database unreachable: ${status.name}: ${status.reason}`;
  return `${plural(status.pending.length, 'pending migration')} on ${status.name}: ${status.pending.join(', ')}`;
}

function finalProblemLine(status: DataSourceMigrationStatus): string {
  switch (status.problem) {
    case 'authentication':
      return `Authentication failed on ${status.name}: ${status.reason}. Fix the credentials; waiting will not help.`;
    case 'unknown-database':
      return `Unknown database on ${status.name}: ${status.reason}. Create it or fix its name; waiting will not help.`;
    default:
      return `Configuration error on ${status.name}: ${status.reason}. Fix the data source options; waiting will not help.`;
  }
}

function interrupted(signal: AbortSignal | undefined, what: string, io: K8sCommandIo): number {
  const name = String(signal?.reason ?? 'signal');
  io.err(`Interrupted by ${name} ${what}`);
  const number = (osConstants.signals as Record<string, number | undefined>)[name];
  return number ? 128 + number : 1;
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

function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message || error.name : String(error);
  return text.replace(/\s+/g, ' ').trim();
}
