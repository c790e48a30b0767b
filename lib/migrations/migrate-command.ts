import {
  MigrationFailedError,
  MigrationLockTimeoutError,
  MigrationLockUnsupportedError,
} from '../errors/migration.errors.js';
import { withDeadline } from '../util/deadline.js';
import type { MigrateArgs } from './command-args.js';
import type { CommandDataSource } from './command-data-source.js';
import {
  configurationProblem,
  describeNotReady,
  finalProblemLine,
  interruptedLine,
  migrationFailedLine,
  noAnswer,
  plural,
} from './command-messages.js';
import type { K8sCommandIo } from './command-options.js';
import { ABORTED, signalExitCode, untilAborted } from './command-signals.js';
import type { CommandOutcome, CommandSpan, CommandTracer } from './command-tracer.js';
import { runMigrationsLocked } from './migrate.js';
import { LOCKABLE_TYPES } from './migration-lock.js';
import { NO_MIGRATIONS, problemIsFinal } from './migration-check.js';

/** What the migrate command works with, besides its arguments. */
export interface MigrateContext {
  targets: CommandDataSource[];
  /** Time limit of connecting, in ms. */
  connectMs: number;
  io: K8sCommandIo;
  signal: AbortSignal | undefined;
  tracer: CommandTracer;
}

/**
 * How migrating one data source ended: undefined to go on with the next, or exit with this
 * code after printing `line` (on stderr).
 */
type Step = { exit: number; outcome: CommandOutcome; line?: string } | undefined;

/**
 * `migrate`: apply the pending migrations of each data source in turn, under the migration
 * lock; exit 0 when all are applied, 1 on what may pass (unreachable, a failed migration, a
 * lock timeout), 2 on what will not, 128 + n on signal n.
 */
export async function migrateCommand(args: MigrateArgs, context: MigrateContext): Promise<number> {
  const { targets, io } = context;
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
    const span: CommandSpan = { command: 'migrate', attempt: 1, dataSources: [target.name] };
    const step = await context.tracer.attempt(span, async () => {
      const ended = await migrateOne(args, target, context);
      span.outcome = ended?.outcome ?? 'ready';
      span.detail = ended?.line;
      return ended;
    });
    if (step) {
      if (step.line) io.err(step.line);
      return step.exit;
    }
  }
  return 0;
}

async function migrateOne(
  args: MigrateArgs,
  target: CommandDataSource,
  { connectMs, io, signal }: MigrateContext,
): Promise<Step> {
  const interrupted = (what: string): Step => ({
    exit: signalExitCode(signal),
    outcome: 'interrupted',
    line: interruptedLine(signal, what),
  });
  const failure = await untilAborted(
    withDeadline(target.connect(), connectMs, () => noAnswer(target.name, connectMs)),
    signal,
  );
  if (failure === ABORTED) return interrupted('while connecting');
  if (failure) {
    if (problemIsFinal(failure.problem!)) {
      return { exit: 2, outcome: 'failed', line: finalProblemLine(failure) };
    }
    return { exit: 1, outcome: 'not-ready', line: `Cannot migrate: ${describeNotReady(failure)}` };
  }
  if (target.dataSource.migrations.length === 0) {
    const line = finalProblemLine(configurationProblem(target.name, NO_MIGRATIONS));
    return { exit: 2, outcome: 'failed', line };
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
    return migrateFailed(error, target, signal, interrupted);
  } finally {
    signal?.removeEventListener('abort', tell);
  }
  if (signal?.aborted && applied.length === 0) {
    return interrupted(`before any migration started on ${target.name}`);
  }
  io.out(
    applied.length > 0
      ? `Applied ${plural(applied.length, 'migration')} on ${target.name}: ${applied.join(', ')}.`
      : `No migrations pending on ${target.name}.`,
  );
  // Applied, then the signal: nothing more starts, and the exit code says why.
  if (signal?.aborted) {
    return { exit: signalExitCode(signal), outcome: 'interrupted' };
  }
  return undefined;
}

/** The step for an error of `runMigrationsLocked`. */
function migrateFailed(
  error: unknown,
  target: CommandDataSource,
  signal: AbortSignal | undefined,
  interrupted: (what: string) => Step,
): Step {
  if (signal?.aborted && !(error instanceof MigrationFailedError)) {
    return interrupted('while waiting for the migration lock');
  }
  if (error instanceof MigrationFailedError) {
    // Whatever the migration threw (even a TypeError) is the migration's problem: exit 1.
    const line = migrationFailedLine(target.name, target.secrets, error);
    return { exit: 1, outcome: 'failed', line };
  }
  if (error instanceof MigrationLockTimeoutError) {
    return { exit: 1, outcome: 'failed', line: `${error.message} (${target.name})` };
  }
  if (error instanceof MigrationLockUnsupportedError) {
    return { exit: 2, outcome: 'failed', line: `${target.name}: ${error.message}` };
  }
  // Before any migration ran: taking the lock or reading the migrations table.
  const status = target.failed(error);
  if (status.problem === 'unreachable') {
    return {
      exit: 1,
      outcome: 'not-ready',
      line: `Migrating ${target.name} failed: ${status.reason}`,
    };
  }
  return { exit: 2, outcome: 'failed', line: finalProblemLine(status) };
}
