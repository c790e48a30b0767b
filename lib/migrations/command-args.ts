import { MigrationUsageError } from '../errors/migration.errors.js';

/** The commands the entry helper recognises as the first argument. */
export const K8S_COMMANDS = ['checkmigrations', 'migrate'] as const;
export type K8sCommandName = (typeof K8S_COMMANDS)[number];

/** Default of `checkmigrations --timeout` and `migrate --timeout`: bounded, so a pod never waits forever. */
export const DEFAULT_TIMEOUT_SECONDS = 300;
/** Default of `checkmigrations --interval`: seconds between two attempts. */
export const DEFAULT_INTERVAL_SECONDS = 2;
/** The most seconds `--timeout` and `--interval` accept: Node's timers overflow above 2^31-1 ms. */
export const MAX_SECONDS = 2_147_483;

/** Parsed `checkmigrations` arguments. */
export interface CheckMigrationsArgs {
  command: 'checkmigrations';
  help: boolean;
  wait: boolean;
  /** Seconds; 0 means no limit. */
  timeout: number;
  /** Seconds between attempts while waiting. */
  interval: number;
}

/** Parsed `migrate` arguments. */
export interface MigrateArgs {
  command: 'migrate';
  help: boolean;
  /** Seconds to wait for the migration lock; 0 means no limit. */
  timeout: number;
}

export const CHECK_MIGRATIONS_USAGE = `Usage: checkmigrations [--wait] [--timeout SECONDS] [--interval SECONDS] [--help]

Exit 0 when every data source is reachable and all its migrations are applied.
  --wait              retry until ready or until --timeout expires
  --timeout SECONDS   give up after this long (default ${DEFAULT_TIMEOUT_SECONDS}; 0 = no limit)
  --interval SECONDS  pause between attempts while waiting (default ${DEFAULT_INTERVAL_SECONDS})
  --help              show this text
Exit codes: 0 ready; 1 not ready (pending migrations, database unreachable, timed out);
2 waiting will not help (bad options, authentication failure, unknown database, configuration).`;

export const MIGRATE_USAGE = `Usage: migrate [--timeout SECONDS] [--help]

Apply pending migrations under a database lock, so concurrent copies apply each one once.
  --timeout SECONDS   give up waiting for the lock after this long (default ${DEFAULT_TIMEOUT_SECONDS}; 0 = no limit)
  --help              show this text
Exit codes: 0 migrated (or nothing pending); 1 database unreachable, lock timeout or a failed
migration; 2 waiting will not help (bad options, authentication failure, unknown database, configuration).`;

/** The command line without a leading `--` (as `node main.js -- checkmigrations` passes it). */
export function commandLine(argv: readonly string[]): readonly string[] {
  return argv[0] === '--' ? argv.slice(1) : argv;
}

/** The command named by the first argument (after a leading `--`), if any. */
export function commandOf(argv: readonly string[]): K8sCommandName | undefined {
  const first = commandLine(argv)[0];
  return K8S_COMMANDS.find((command) => command === first);
}

/**
 * A usage error for a command line that looks meant for a command but does not name it first
 * (`--wait checkmigrations`, `CheckMigrations`, `--interval 5`): booting the app for it would
 * start the HTTP server and never exit. Undefined when no command is meant, or it is first.
 */
export function misplacedCommand(argv: readonly string[]): string | undefined {
  if (commandOf(argv)) return undefined;
  const args = commandLine(argv);
  const named = args.find((arg) => (K8S_COMMANDS as readonly string[]).includes(arg.toLowerCase()));
  const option = args.find((arg) => /^--(wait|interval)(=|$)/.test(arg));
  if (!named && !option) return undefined;
  const command = (named?.toLowerCase() ?? 'checkmigrations') as K8sCommandName;
  return (
    `${command}: the command must be the first argument, spelled "${command}" ` +
    `(as in "${command} ${command === 'migrate' ? '--timeout 60' : '--wait'}"), not "${args.join(' ')}"; ` +
    `see "${command} --help".`
  );
}

/**
 * Parse a command's arguments (`argv[0]` is the command). Accepts `--opt value` and
 * `--opt=value`; throws {@link MigrationUsageError} (one line, with the synopsis) on anything
 * else. A leading `--` is skipped.
 */
export function parseCommandArgs(argv: readonly string[]): CheckMigrationsArgs | MigrateArgs {
  const command = commandOf(argv);
  if (!command) throw new MigrationUsageError(`Unknown command "${argv[0] ?? ''}".`);
  argv = commandLine(argv);
  const usage = command === 'checkmigrations' ? CHECK_MIGRATIONS_USAGE : MIGRATE_USAGE;
  const flags = command === 'checkmigrations' ? ['--wait', '--help'] : ['--help'];
  const valued = command === 'checkmigrations' ? ['--timeout', '--interval'] : ['--timeout'];
  const seen = new Map<string, string | true>();
  const fail = (problem: string): never => {
    // One line: the problem, the synopsis and where the rest is.
    const synopsis = usage.slice(0, usage.indexOf('\n'));
    throw new MigrationUsageError(`${command}: ${problem} ${synopsis}; see "${command} --help".`);
  };

  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if ((flags.includes(name) || valued.includes(name)) && seen.has(name)) {
      fail(`${name} is given more than once.`);
    }
    if (flags.includes(name)) {
      if (eq > 0) fail(`${name} takes no value.`);
      seen.set(name, true);
    } else if (valued.includes(name)) {
      const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined) fail(`${name} needs a number of seconds.`);
      seen.set(name, value);
    } else {
      fail(`unknown ${arg.startsWith('-') ? 'option' : 'argument'} "${arg}".`);
    }
  }

  const seconds = (name: string, fallback: number, min: number): number => {
    const raw = seen.get(name);
    if (raw === undefined) return fallback;
    // Plain decimals only: Number() would also take "0x10", "1e1" and " 5".
    const value = typeof raw === 'string' && /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isFinite(value) || value < min || value > MAX_SECONDS) {
      fail(
        `${name} must be a number of seconds${min > 0 ? ' above 0' : ' (0 = no limit)'} and at most ${MAX_SECONDS}, not "${String(raw)}".`,
      );
    }
    return value;
  };
  const help = seen.has('--help');
  const timeout = seconds('--timeout', DEFAULT_TIMEOUT_SECONDS, 0);
  if (command === 'migrate') return { command, help, timeout };
  const interval = seconds('--interval', DEFAULT_INTERVAL_SECONDS, 0.001);
  return { command, help, wait: seen.has('--wait'), timeout, interval };
}
