import { setTimeout as delay } from 'node:timers/promises';
import type { CheckMigrationsArgs } from './command-args.js';
import type { CommandDataSource } from './command-data-source.js';
import {
  describeNotReady,
  finalProblemLine,
  interruptedLine,
  noAnswer,
} from './command-messages.js';
import type { K8sCommandIo } from './command-options.js';
import { signalExitCode, stopWhen } from './command-signals.js';
import type { CommandSpan, CommandTracer } from './command-tracer.js';
import { isReady, problemIsFinal } from './migration-check.js';
import type { DataSourceMigrationStatus } from './migration-check.js';

/** What the check command works with, besides its arguments. */
export interface CheckContext {
  targets: CommandDataSource[];
  /** Time limit of one attempt, in ms. */
  attemptMs: number;
  io: K8sCommandIo;
  signal: AbortSignal | undefined;
  tracer: CommandTracer;
}

/** What one attempt found, or why it was cut short (with what it learned until then). */
type AttemptResult =
  | { statuses: DataSourceMigrationStatus[] }
  | { stopped: 'timeout' | 'signal'; notReady: string | undefined };

/**
 * `checkmigrations`: check every data source once per attempt; exit 0 when all are ready, 2 at
 * once on what waiting will not fix, 1 when not ready (at once without `--wait`, at the
 * timeout with it), 128 + n on signal n.
 */
export async function checkCommand(
  args: CheckMigrationsArgs,
  { targets, attemptMs, io, signal, tracer }: CheckContext,
): Promise<number> {
  const started = Date.now();
  const deadline = args.timeout > 0 ? started + args.timeout * 1000 : Infinity;
  const stop = stopWhen(args.timeout * 1000, signal);
  let notReady = 'no attempt finished';
  const ended = (reason: 'timeout' | 'signal'): number => {
    if (reason === 'signal') {
      io.err(interruptedLine(signal, `while waiting; not ready: ${notReady}`));
      return signalExitCode(signal);
    }
    io.err(`Timed out after ${args.timeout} s, not ready: ${notReady}`);
    return 1;
  };
  try {
    for (let attempt = 1; ; attempt++) {
      // Each attempt ends by its own deadline, so a database that never answers still gives
      // one progress line per attempt.
      const limit = Math.max(1, Math.min(attemptMs, deadline - Date.now()));
      const span: CommandSpan = {
        command: 'checkmigrations',
        attempt,
        dataSources: targets.map((target) => target.name),
      };
      const result = await tracer.attempt(span, async () => {
        const found = await checkAll(targets, limit, stop.reached);
        traceOutcome(span, found);
        return found;
      });
      if ('stopped' in result) {
        if (result.notReady !== undefined) notReady = result.notReady;
        return ended(result.stopped);
      }
      const { statuses } = result;
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

/**
 * One attempt: every data source checked at once, each within `limitMs`. What waiting cannot
 * fix is told at once, without waiting for the other sources.
 */
async function checkAll(
  targets: CommandDataSource[],
  limitMs: number,
  stopped: Promise<'timeout' | 'signal'>,
): Promise<AttemptResult> {
  const attemptStarted = Date.now();
  const answered = new Map<CommandDataSource, DataSourceMigrationStatus>();
  const outcome = new Promise<DataSourceMigrationStatus[]>((resolve) => {
    for (const target of targets) {
      void target.check(limitMs).then((status) => {
        answered.set(target, status);
        if (status.problem && problemIsFinal(status.problem)) resolve([status]);
        else if (answered.size === targets.length) resolve(targets.map((t) => answered.get(t)!));
      });
    }
  });
  const statuses = await Promise.race([outcome, stopped]);
  if (typeof statuses !== 'string') return { statuses };
  if (answered.size === targets.length) return { stopped: statuses, notReady: undefined };
  // Cut short: what this attempt learned so far, and which sources did not answer.
  const late = Date.now() - attemptStarted;
  const notReady = targets
    .map((target) => answered.get(target) ?? noAnswer(target.name, late))
    .filter((status) => !isReady(status))
    .map(describeNotReady)
    .join('; ');
  return { stopped: statuses, notReady };
}

function traceOutcome(span: CommandSpan, result: AttemptResult): void {
  if ('stopped' in result) {
    span.outcome = 'interrupted';
    span.detail = result.stopped;
    return;
  }
  const final = result.statuses.find((s) => s.problem && problemIsFinal(s.problem));
  const waiting = result.statuses.filter((status) => !isReady(status));
  span.outcome = final ? 'failed' : waiting.length > 0 ? 'not-ready' : 'ready';
  if (final) span.detail = finalProblemLine(final);
  else if (waiting.length > 0) span.detail = waiting.map(describeNotReady).join('; ');
}
