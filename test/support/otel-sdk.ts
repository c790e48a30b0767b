import { context, metrics, trace } from '@opentelemetry/api';
import type { Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { DataPointType, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import type { DataPoint, Histogram, MetricData } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';

/** A metric reader that exports nothing: `collect()` is what tests read. */
class CollectingReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** The real OpenTelemetry SDK, registered globally as an app's tracing set-up does. */
export interface TestOtelSdk {
  /** A tracer of the registered provider, for the test's own (parent) spans. */
  readonly tracer: Tracer;
  /** Every span ended so far. */
  spans(): ReadableSpan[];
  /** Collect every metric now (observable callbacks run). */
  metrics(): Promise<MetricData[]>;
  /** Unregister and shut the providers down. */
  shutdown(): Promise<void>;
}

/**
 * Register a `BasicTracerProvider` exporting to an `InMemorySpanExporter`, a `MeterProvider` read on
 * demand, and the AsyncLocalStorage context manager, as globals. One at a time per process.
 */
export function startOtelSdk(): TestOtelSdk {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const reader = new CollectingReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  if (
    !context.setGlobalContextManager(contextManager) ||
    !trace.setGlobalTracerProvider(tracerProvider) ||
    !metrics.setGlobalMeterProvider(meterProvider)
  ) {
    throw new Error('an OpenTelemetry SDK is registered already: shut the other one down first');
  }
  return {
    tracer: trace.getTracer('test'),
    spans: () => exporter.getFinishedSpans(),
    metrics: async () => {
      const { resourceMetrics, errors } = await reader.collect();
      if (errors.length > 0) throw errors[0];
      return resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics);
    },
    shutdown: async () => {
      trace.disable();
      metrics.disable();
      context.disable();
      await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]);
    },
  };
}

/** The data points of the metric `name` (empty when it was not collected). */
export function pointsOf(collected: readonly MetricData[], name: string): DataPoint<unknown>[] {
  const metric = collected.find((m) => m.descriptor.name === name);
  return (metric?.dataPoints ?? []) as DataPoint<unknown>[];
}

/** The histogram points of `name`; throws when it is not a histogram. */
export function histogramPoints(
  collected: readonly MetricData[],
  name: string,
): DataPoint<Histogram>[] {
  const metric = collected.find((m) => m.descriptor.name === name);
  if (metric === undefined) return [];
  if (metric.dataPointType !== DataPointType.HISTOGRAM) throw new Error(`${name} is no histogram`);
  return metric.dataPoints;
}
