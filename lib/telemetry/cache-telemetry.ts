// telemetry/: OpenTelemetry for the store and the migration commands, which build it (a store
// built by hand must report by default, with nothing above it to wire that in). It sits below
// both and above the pool: it implements the pool's `CommandObserver` and reads the pool's stats
// shape, and never imports the store or the commands (see CONTRIBUTING.md, "Where things live").

import type { CommandObserver } from '../memcached/pool/command-observer.js';
import { CommandTelemetry, INSTRUMENTATION_SCOPE } from './command-telemetry.js';
import { loadOtelApi, requireOtelApi } from './otel-api-loader.js';
import { resolveTelemetryOptions } from './telemetry-options.js';
import type { K8sTelemetryOptions } from './telemetry-options.js';
import { observeStoreMetrics } from './store-metrics.js';
import type { StoreMetricsSource } from './store-metrics.js';

/** What a store needs to report through OpenTelemetry. */
export interface CacheTelemetry {
  /** Passed to the pool: sees every command sent to a member. */
  readonly observer: CommandObserver;
  /** Start the store's observable metrics (with `metrics`); returns a function that stops them. */
  observe(store: StoreMetricsSource): () => void;
}

/**
 * The cache's OpenTelemetry reporting for the `cache.telemetry` option, or undefined when
 * it is off or (by default) `@opentelemetry/api` is not installed. The tracer and meter come from
 * the global providers as they are now: register the SDK before the store is created (as an
 * `--import`ed tracing file does).
 *
 * @throws OtelApiMissingError when telemetry was asked for explicitly and the API is missing.
 */
export function createCacheTelemetry(
  option: boolean | K8sTelemetryOptions | undefined,
  load?: (name: string) => unknown,
): CacheTelemetry | undefined {
  const options = resolveTelemetryOptions(option);
  if (options === false) return undefined;
  const api = options.explicit ? requireOtelApi('cache.telemetry', load) : loadOtelApi(load);
  if (api === undefined) return undefined;
  const observer = CommandTelemetry.fromGlobal(api, options);
  return {
    observer,
    observe: (store) =>
      options.metrics
        ? observeStoreMetrics(api.metrics.getMeter(INSTRUMENTATION_SCOPE), store)
        : () => undefined,
  };
}
