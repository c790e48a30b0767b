import { MigrationUsageError } from '../errors/migration.errors.js';
import { withDeadline } from '../util/deadline.js';
import { CHECK_MIGRATIONS_USAGE, MIGRATE_USAGE, parseCommandArgs } from './command-args.js';
import type { CheckMigrationsArgs, MigrateArgs } from './command-args.js';
import { checkCommand } from './check-command.js';
import { CommandDataSource, ConfigurationError } from './command-data-source.js';
import { finalProblemLine, interruptedLine } from './command-messages.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, stdio } from './command-options.js';
import type { K8sCommandIo, K8sCommandOptions, K8sDataSourceInput } from './command-options.js';
import { ABORTED, signalExitCode, untilAborted } from './command-signals.js';
import { otelCommandTracer } from './command-tracer.js';
import { maskCredentials } from './mask-credentials.js';
import { migrateCommand } from './migrate-command.js';
import { errorLine } from './migration-check.js';

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
    if (inputs === ABORTED) {
      io.err(interruptedLine(signal, 'while reading the data source options'));
      return signalExitCode(signal);
    }
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
    const context = { targets, io, signal, tracer: options.tracer ?? otelCommandTracer() };
    return args.command === 'checkmigrations'
      ? await checkCommand(args, { ...context, attemptMs: connectTimeout })
      : await migrateCommand(args, { ...context, connectMs: connectTimeout });
  } finally {
    // Bounded: an attempt cut short (by a timeout, a final problem elsewhere or a signal) may
    // still be setting up a connection that never completes; then exiting promptly matters
    // more than a tidy close.
    const cutShort = signal?.aborted || targets.some((target) => target.busy);
    await withDeadline(
      Promise.allSettled(targets.map((target) => target.close())).then(() => undefined),
      cutShort ? 250 : 2_000,
      () => undefined,
    );
  }
}
