import type { Attributes } from '@opentelemetry/api';
import { loadOtelApi } from './otel-api-loader.js';
import type { OtelApi } from './otel-api-loader.js';
import { INSTRUMENTATION_SCOPE } from './command-telemetry.js';

/** What the traced function can add to its span. */
export interface AttemptSpan {
  /** Add attributes (an outcome: pending count, ready or not). */
  setAttributes(attributes: Attributes): void;
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
    try {
      const result = await fn(span);
      return result;
    } catch (error) {
      span.setAttribute(
        'error.type',
        error instanceof Error ? error.name : typeof error === 'string' ? error : '_OTHER',
      );
      span.setStatus({
        code: api.SpanStatusCode.ERROR,
        message: error instanceof Error ? error.message : String(error),
      });
      throw error;
    } finally {
      span.end();
    }
  });
}

const NO_SPAN: AttemptSpan = { setAttributes: () => undefined };
