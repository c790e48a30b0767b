import type { Attributes } from '@opentelemetry/api';
import { loadOtelApi } from './otel-api-loader.js';
import type { OtelApi } from './otel-api-loader.js';
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
 * runs. The migration commands' `otelCommandTracer` opens one per attempt.
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
