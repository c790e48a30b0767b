import type { Attributes, Histogram, Span, Tracer } from '@opentelemetry/api';
import type { Member } from '../discovery/member.js';
import { memberId } from '../discovery/member.js';
import type {
  CommandObserver,
  CommandOutcome,
  CommandReason,
  MemberOperation,
} from '../memcached/pool/command-observer.js';
import type { OtelApi } from './otel-api-loader.js';
import { errorType } from './error-type.js';
import { GlobalTracer } from './global-tracer.js';

/** Instrumentation scope of the cache's spans and metrics. */
export const INSTRUMENTATION_SCOPE = 'nestjs-k8s';

/** Why the pool sent a command, on spans other than the owner's (`replica`, `warmup`, …). */
export const REASON_ATTRIBUTE = 'nestjs_k8s.cache.reason';

/** The semantic conventions' advice for `db.client.operation.duration`, in seconds. */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];

/** What {@link CommandTelemetry} reports to. */
export interface CommandTelemetryOptions {
  /** The tracer to use now (undefined: no span this time); unset: no spans. */
  readonly tracer?: () => Tracer | undefined;
  /** `db.client.operation.duration`; undefined: no timing at all (not even a clock read). */
  readonly duration?: Histogram;
  /** Record the keys as `db.query.text`. */
  readonly recordKeys: boolean;
}

/** Per member and operation: the span name and the attributes every command of it shares. */
interface Shape {
  readonly name: string;
  readonly attributes: Attributes;
}

const done = (): void => undefined;

/**
 * A `CommandObserver` that makes one CLIENT span per command the pool sends to a member, following
 * the database client semantic conventions (`db.system.name: memcached`, `db.operation.name`,
 * `server.address`, `server.port`, `db.operation.batch.size` for multi-key commands,
 * `db.response.returned_rows` for the keys a read found, `error.type` and an error status on
 * failure), and records `db.client.operation.duration`. Spans start in the caller's context, so
 * they are children of whatever span is active there (an HTTP request's).
 */
export class CommandTelemetry implements CommandObserver {
  private readonly tracer: (() => Tracer | undefined) | undefined;
  private readonly duration: Histogram | undefined;
  private readonly recordKeys: boolean;
  /** Member objects stay the same while a member is in the pool: shapes are built once. */
  private readonly shapes = new WeakMap<Member, Partial<Record<MemberOperation, Shape>>>();

  constructor(
    private readonly api: OtelApi,
    options: CommandTelemetryOptions,
  ) {
    this.tracer = options.tracer;
    this.duration = options.duration;
    this.recordKeys = options.recordKeys;
  }

  /**
   * Spans through the global tracer as it is at each command; the histogram from the global meter
   * provider as it is now (the metrics API has no proxy: register the SDK before the store).
   */
  static fromGlobal(
    api: OtelApi,
    options: { traces: boolean; metrics: boolean; recordKeys: boolean },
  ): CommandTelemetry {
    const global = new GlobalTracer(api, INSTRUMENTATION_SCOPE);
    return new CommandTelemetry(api, {
      tracer: options.traces ? () => global.current() : undefined,
      duration: options.metrics ? durationHistogram(api) : undefined,
      recordKeys: options.recordKeys,
    });
  }

  start(
    operation: MemberOperation,
    member: Member,
    batchSize: number,
    reason: CommandReason,
    keys?: string | readonly string[],
  ): (outcome: CommandOutcome) => void {
    const tracer = this.tracer?.();
    const duration = this.duration;
    // The API without an SDK: nothing to make, not even a span object.
    if (tracer === undefined && duration === undefined) return done;
    const shape = this.shape(operation, member);
    let span: Span | undefined;
    if (tracer !== undefined) {
      span = tracer.startSpan(shape.name, {
        kind: this.api.SpanKind.CLIENT,
        attributes: shape.attributes,
      });
      if (span.isRecording()) {
        if (batchSize > 1) span.setAttribute('db.operation.batch.size', batchSize);
        if (reason !== 'owner') span.setAttribute(REASON_ATTRIBUTE, reason);
        if (this.recordKeys && keys !== undefined) {
          span.setAttribute(
            'db.query.text',
            `${operation === 'get_multi' ? 'get' : operation} ${typeof keys === 'string' ? keys : keys.join(' ')}`,
          );
        }
      } else {
        // Not sampled: nothing to end.
        span = undefined;
      }
    }
    if (span === undefined && duration === undefined) return done;
    const started = duration === undefined ? 0 : performance.now();
    return (outcome) => {
      const failure = outcome.error === undefined ? undefined : errorType(outcome.error);
      if (span !== undefined) {
        if (outcome.hits !== undefined)
          span.setAttribute('db.response.returned_rows', outcome.hits);
        if (failure !== undefined) {
          span.setAttribute('error.type', failure);
          span.setStatus({
            code: this.api.SpanStatusCode.ERROR,
            message: messageOf(outcome.error),
          });
        }
        span.end();
      }
      if (duration !== undefined) {
        const seconds = (performance.now() - started) / 1000;
        duration.record(
          seconds,
          failure === undefined ? shape.attributes : { ...shape.attributes, 'error.type': failure },
        );
      }
    };
  }

  private shape(operation: MemberOperation, member: Member): Shape {
    let shapes = this.shapes.get(member);
    if (shapes === undefined) this.shapes.set(member, (shapes = {}));
    return (shapes[operation] ??= {
      // The conventions' `{db.operation.name} {target}`: memcached has no collection or
      // database, so the target is the server.
      name: `${operation} ${memberId(member)}`,
      attributes: {
        'db.system.name': 'memcached',
        'db.operation.name': operation,
        'server.address': member.host,
        'server.port': member.port,
      },
    });
  }
}

/** The histogram, or undefined while no MeterProvider is registered (no clock reads then). */
function durationHistogram(api: OtelApi): Histogram | undefined {
  const meter = api.metrics.getMeter(INSTRUMENTATION_SCOPE);
  if (meter === api.createNoopMeter()) return undefined;
  return meter.createHistogram('db.client.operation.duration', {
    description: 'Duration of memcached commands sent to one member.',
    unit: 's',
    advice: { explicitBucketBoundaries: DURATION_BUCKETS },
  });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
