import type { Metric, Registry } from 'prom-client';
import type { CheckedDataSource } from '../migrations/migration-check.js';
import { checkMetricPrefix, checkMetricsUnregistered } from './metric-names.js';
import { loadPromClient } from './prom-client-loader.js';
import type { PromClient } from './prom-client-loader.js';

/** What the metrics read: the app's `MigrationsHealthIndicator` (`nestjs-k8s/health`). */
export interface MigrationsMetricsSource {
  /** Every data source its checks have read, as the latest one found it. */
  lastChecked(): readonly CheckedDataSource[];
}

/** Options of {@link registerMigrationsMetrics}. */
export interface MigrationsMetricsOptions {
  /** Registry to register on. @default prom-client's global `register` */
  registry?: Registry;
  /** Prefix of every metric name. @default 'nestjs_k8s_migrations_' */
  prefix?: string;
  /** prom-client itself, if it cannot be loaded from here (bundlers). @default require('prom-client') */
  promClient?: PromClient;
}

/**
 * Register what the migrations health checks found, per data source (label `data_source`: type,
 * host, port and database), read when the registry is scraped:
 *
 * | metric (default prefix `nestjs_k8s_migrations_`) | type  | value                                     |
 * | ------------------------------------------------ | ----- | ----------------------------------------- |
 * | `pending`                                        | gauge | pending migrations (reachable ones only)  |
 * | `last_check_timestamp_seconds`                   | gauge | when the latest check of it ended         |
 *
 * The values come from the checks the indicator runs for the readiness probe; a data source no
 * check has read yet has no series, and one the latest check could not reach has no `pending`.
 * Returns a function that removes them again.
 *
 * @throws PromClientMissingError when prom-client is not installed.
 * @throws K8sOptionsError when the prefix is not a valid metric name prefix, or these metrics
 *   are registered on this registry already.
 */
export function registerMigrationsMetrics(
  source: MigrationsMetricsSource,
  options: MigrationsMetricsOptions = {},
): () => void {
  const prefix = options.prefix ?? 'nestjs_k8s_migrations_';
  checkMetricPrefix(prefix, 'pending');
  const client = options.promClient ?? loadPromClient();
  const registry = options.registry ?? client.register;
  const pendingName = `${prefix}pending`;
  const checkedName = `${prefix}last_check_timestamp_seconds`;
  checkMetricsUnregistered(
    registry,
    [pendingName, checkedName],
    'Migrations metrics',
    'registerMigrationsMetrics',
  );
  const metrics: Metric[] = [
    new client.Gauge({
      name: pendingName,
      help: 'Migrations pending on a data source, as the latest migrations health check found.',
      labelNames: ['data_source'],
      registers: [registry],
      collect() {
        this.reset();
        for (const checked of source.lastChecked()) {
          if (checked.reachable) this.set({ data_source: checked.name }, checked.pending);
        }
      },
    }),
    new client.Gauge({
      name: checkedName,
      help: 'When the latest migrations health check of a data source ended (reachable or not).',
      labelNames: ['data_source'],
      registers: [registry],
      collect() {
        this.reset();
        for (const checked of source.lastChecked()) {
          this.set({ data_source: checked.name }, checked.checkedAt / 1000);
        }
      },
    }),
  ];
  return () => {
    for (const name of [pendingName, checkedName]) {
      // Only ours: something else may have taken the name after an earlier unregister.
      const metric = registry.getSingleMetric(name);
      if (metric !== undefined && metrics.includes(metric)) registry.removeSingleMetric(name);
    }
  };
}
