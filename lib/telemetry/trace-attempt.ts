import type { Attributes } from '@opentelemetry/api';
import { loadOtelApi } from './otel-api-loader.js';
import type { OtelApi } from './otel-api-loader.js';
import { NO_TRACING } from '../migrations/command-tracer.js';
import type { CommandTracer } from '../migrations/command-tracer.js';
import { INSTRUMENTATION_SCOPE } from './command-telemetry.js';

/** What the traced function can add to its span. */
export interface AttemptSpan {
  /** Add attributes (an outcome: pending count, ready or not). */
  setAttributes(attributes: Attributes): void;
  /** Mark the span failed without throwing (an outcome the caller reports as a failure). */
  fail(errorType: string, message: string): void;
}

/**
 * Run `fn` inside a span named `name` (INTERNAL, through the global tracer; anything the attempt
 * does, a database client's spans included, becomes its child). A rejection sets an error status
 * and `error.type`, and is rethrown unchanged. Without `@opentelemetry/api` installed, `fn` simply
 * runs. For the migration commands: one span per `checkmigrations` attempt, one for `migrate`.
 */
export async function traceCommandAttempt<T>(
  name: string,
  attributes: Attributes,
  fn: (span: AttemptSpan) => Promise<T>,
  api: OtelApi | undefined = loadOtelApi(),
): Promise<T> {
  if (api === undefined) return fn(NO_SPAN);
  const tracer = api.trace.getTracer(INSTRUMENTATION_SCOPE);
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    const fail = (errorType: string, message: string): void => {
      span.setAttribute('error.type', errorType);
      span.setStatus({ code: api.SpanStatusCode.ERROR, message });
    };
    try {
      return await fn({ setAttributes: (more) => span.setAttributes(more), fail });
    } catch (error) {
      fail(
        error instanceof Error ? error.name : '_OTHER',
        error instanceof Error ? error.message : String(error),
      );
      throw error;
    } finally {
      span.end();
    }
  });
}

const NO_SPAN: AttemptSpan = { setAttributes: () => undefined, fail: () => undefined };

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
