import { loadOtelApi } from '../telemetry/otel-api-loader.js';
import type { OtelApi } from '../telemetry/otel-api-loader.js';
import { traceCommandAttempt } from '../telemetry/trace-attempt.js';

/** How a unit of a command's work ended. */
export type CommandOutcome =
  /** checkmigrations: every data source reachable with nothing pending; migrate: done. */
  | 'ready'
  /** Pending migrations or an unreachable database: waiting may fix it (exit 1). */
  | 'not-ready'
  /** What waiting will not fix (exit 2), a failed migration, or a lock timeout. */
  | 'failed'
  /** Cut short by a signal or by `--timeout` before it finished. */
  | 'interrupted';

/** One unit of a command's work, as a {@link CommandTracer} sees it. */
export interface CommandSpan {
  /**
   * `checkmigrations`: one attempt (every data source checked once); `migrate`: connecting to
   * one data source, taking its lock and applying its pending migrations.
   */
  readonly command: 'checkmigrations' | 'migrate';
  /** The attempt's number, from 1 (always 1 for `migrate`). */
  readonly attempt: number;
  /** The data sources concerned, named as the commands' lines name them (never credentials). */
  readonly dataSources: readonly string[];
  /** How it ended; set by the command before the work's promise settles. */
  outcome?: CommandOutcome;
  /** The line that says why (not ready, failed, interrupted) or what was applied. */
  detail?: string;
}

/**
 * Observes the commands' work, e.g. to record an OpenTelemetry span per `checkmigrations`
 * attempt and per `migrate` data source. `attempt` must call `run` once and return what it
 * returns; the commands turn every error into an outcome, so `run` does not reject.
 *
 * ```ts
 * tracer: {
 *   attempt: (span, run) =>
 *     otel.startActiveSpan(span.command, async (s) => {
 *       try { return await run(); }
 *       finally { s.setAttribute('outcome', span.outcome ?? 'unknown'); s.end(); }
 *     }),
 * }
 * ```
 */
export interface CommandTracer {
  attempt<T>(span: CommandSpan, run: () => Promise<T>): Promise<T>;
}

/** No tracing (what the commands use when `@opentelemetry/api` is not installed). */
export const NO_TRACING: CommandTracer = { attempt: (_span, run) => run() };

/**
 * A `CommandTracer` for the migration commands: one span per `checkmigrations` attempt and per
 * data source `migrate` works on, named after the command, with the attempt number, the data
 * sources and the outcome (`nestjs_k8s.command.*`); a `failed` outcome is an error status.
 */
export function otelCommandTracer(api: OtelApi | undefined = loadOtelApi()): CommandTracer {
  if (api === undefined) return NO_TRACING;
  return {
    attempt: (work, run) =>
      traceCommandAttempt(
        work.command,
        {
          'nestjs_k8s.command.attempt': work.attempt,
          'nestjs_k8s.command.data_sources': [...work.dataSources],
        },
        async (span) => {
          const result = await run();
          span.setAttributes({
            'nestjs_k8s.command.outcome': work.outcome ?? 'unknown',
            ...(work.detail !== undefined && { 'nestjs_k8s.command.detail': work.detail }),
          });
          if (work.outcome === 'failed')
            span.fail('failed', work.detail ?? `${work.command} failed`);
          return result;
        },
        api,
      ),
  };
}
