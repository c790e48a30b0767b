import type { Metric, Registry } from 'prom-client';
import type { MemcachedStoreStats } from '../memcached/store/memcached.store.js';
import { checkMetricPrefix, checkMetricsUnregistered } from './metric-names.js';
import { loadPromClient } from './prom-client-loader.js';
import type { PromClient } from './prom-client-loader.js';

/** What the metrics read: a `MemcachedStore` (the `K8S_MEMCACHED_STORE` provider). */
export interface CacheMetricsSource {
  /** The snapshot every scrape reads. */
  stats(): MemcachedStoreStats;
}

/** Options of {@link registerCacheMetrics}. */
export interface CacheMetricsOptions {
  /** Registry to register on. @default prom-client's global `register` */
  registry?: Registry;
  /** Prefix of every metric name. @default 'nestjs_k8s_cache_' */
  prefix?: string;
  /** prom-client itself, if it cannot be loaded from here (bundlers). @default require('prom-client') */
  promClient?: PromClient;
}

type Labels = Record<string, string>;
type Sample = readonly [labels: Labels, value: number];

interface MetricDefinition {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  labelNames: string[];
  samples: () => readonly Sample[];
}

/**
 * Register the store's counters on a prom-client registry: every value is read from
 * `store.stats()` when the registry is scraped, so nothing runs on the cache's own paths. Returns a
 * function that removes them again (call it on shutdown, or before registering a new store).
 *
 * | metric (default prefix `nestjs_k8s_cache_`)          | type      | labels          |
 * | ---------------------------------------------------- | --------- | --------------- |
 * | `operations_total` (keys sent)                       | counter   | `member`        |
 * | `hits_total`, `misses_total`                         | counter   | `member`        |
 * | `errors_total` (failed commands)                     | counter   | `member`        |
 * | `ejections_total`, `readmissions_total`              | counter   | `member`        |
 * | `warmup_copies_total`, `replica_reads_total`         | counter   | `member`        |
 * | `key_mismatches_total` (replies of another key)      | counter   | `member`        |
 * | `members`                                            | gauge     | `state`         |
 * | `command_duration_seconds` (with `collectTimings`)   | histogram | `member`        |
 * | `dns_lookups_total` (DNS discovery only)             | counter   | `reason`        |
 * | `dns_lookup_failures_total`                          | counter   |                 |
 * | `dns_healthy` (0 while the latest lookup failed)     | gauge     |                 |
 * | `dns_last_success_timestamp_seconds`                 | gauge     |                 |
 *
 * A member's counters start at zero when it joins (or re-joins) the member list, which
 * Prometheus' `rate()` and `increase()` read as a counter reset.
 *
 * @throws PromClientMissingError when prom-client is not installed.
 * @throws K8sOptionsError when the prefix is not a valid metric name prefix, or these metrics
 *   are registered on this registry already.
 */
export function registerCacheMetrics(
  store: CacheMetricsSource,
  options: CacheMetricsOptions = {},
): () => void {
  const prefix = options.prefix ?? 'nestjs_k8s_cache_';
  checkMetricPrefix(prefix, 'members');
  const client = options.promClient ?? loadPromClient();
  const registry = options.registry ?? client.register;
  /** A counter of one number per member (labelled `member`). */
  const memberCounter = (
    name: string,
    help: string,
    read: (m: MemcachedStoreStats['members'][number]) => number,
  ): MetricDefinition => ({
    name,
    help,
    type: 'counter',
    labelNames: ['member'],
    samples: () => store.stats().members.map((m): Sample => [{ member: m.member }, read(m)]),
  });

  const metrics: Metric[] = [];
  const definitions: MetricDefinition[] = [
    memberCounter(
      'operations_total',
      'Keys sent to a memcached member (a multi-get of n keys counts n).',
      (m) => m.ops,
    ),
    memberCounter('hits_total', 'Keys a memcached member found.', (m) => m.hits),
    memberCounter('misses_total', 'Keys a memcached member did not hold.', (m) => m.misses),
    memberCounter(
      'errors_total',
      'Commands to a memcached member that failed (they read as misses).',
      (m) => m.errors,
    ),
    memberCounter(
      'ejections_total',
      'Times a memcached member left the ring after consecutive failures.',
      (m) => m.ejections,
    ),
    memberCounter(
      'readmissions_total',
      'Times an ejected memcached member answered its probe and went back on the ring.',
      (m) => m.readmissions,
    ),
    memberCounter(
      'warmup_copies_total',
      'Values copied to a memcached member, their new owner, after a ring change (warm-up).',
      (m) => m.warmupCopies,
    ),
    memberCounter(
      'replica_reads_total',
      'Reads a memcached member answered as a replica after the owner missed or failed.',
      (m) => m.replicaReads,
    ),
    memberCounter(
      'key_mismatches_total',
      "Replies of a memcached member that carried another key's value (read as misses).",
      (m) => m.keyMismatches,
    ),
    {
      name: 'members',
      help: 'Memcached members known, by state: on the ring, or ejected.',
      type: 'gauge',
      labelNames: ['state'],
      samples: () => {
        const stats = store.stats();
        return [
          [{ state: 'ring' }, stats.ring.length],
          [{ state: 'ejected' }, stats.members.length - stats.ring.length],
        ];
      },
    },
  ];
  // Only stores that discover their members from DNS have lookups to count.
  if (store.stats().discovery !== undefined) {
    const discovery = () => store.stats().discovery;
    definitions.push(
      {
        name: 'dns_lookups_total',
        help: 'DNS lookups of the memcached members, by what started them.',
        type: 'counter',
        labelNames: ['reason'],
        samples: () =>
          Object.entries(discovery()?.lookupsByReason ?? {}).map(([reason, count]): Sample => [
            { reason },
            count,
          ]),
      },
      {
        name: 'dns_lookup_failures_total',
        help: 'DNS lookups of the memcached members that failed (the member list stayed).',
        type: 'counter',
        labelNames: [],
        samples: () => [[{}, discovery()?.failures ?? 0]],
      },
      {
        name: 'dns_healthy',
        help: '1 while the latest DNS lookup of the memcached members succeeded, else 0.',
        type: 'gauge',
        labelNames: [],
        samples: () => [[{}, discovery()?.healthy === false ? 0 : 1]],
      },
      {
        name: 'dns_last_success_timestamp_seconds',
        help: 'When a DNS lookup of the memcached members last succeeded (0: never).',
        type: 'gauge',
        labelNames: [],
        samples: () => [[{}, (discovery()?.lastSuccessAt ?? 0) / 1000]],
      },
    );
  }
  const histogramName = `${prefix}command_duration_seconds`;
  const names = [...definitions.map((d) => prefix + d.name), histogramName];
  checkMetricsUnregistered(registry, names, 'Cache metrics', 'registerCacheMetrics');

  for (const definition of definitions) {
    const { samples } = definition;
    const config = {
      name: prefix + definition.name,
      help: definition.help,
      labelNames: definition.labelNames,
      registers: [registry],
    };
    // Filled from the snapshot on every scrape; reset first so removed members disappear.
    metrics.push(
      definition.type === 'counter'
        ? new client.Counter({
            ...config,
            collect() {
              this.reset();
              for (const [labels, value] of samples()) this.inc(labels, value);
            },
          })
        : new client.Gauge({
            ...config,
            collect() {
              this.reset();
              for (const [labels, value] of samples()) this.set(labels, value);
            },
          }),
    );
  }
  const histogram = latencyHistogram(histogramName, store);
  registry.registerMetric(histogram);
  metrics.push(histogram);

  return () => {
    for (const name of names) {
      // Only ours: something else may have taken the name after an earlier unregister.
      const metric = registry.getSingleMetric(name);
      if (metric !== undefined && metrics.includes(metric)) {
        registry.removeSingleMetric(name);
      }
    }
  };
}

/**
 * prom-client's `Histogram` only counts observations one by one, while the pool keeps its own
 * buckets; a registry reads a metric through `get()` alone, so this object hands it the pool's
 * buckets as a histogram in prom-client's own format.
 */
function latencyHistogram(name: string, store: CacheMetricsSource): Metric {
  const histogram = {
    name,
    help: 'Round-trip time of memcached commands, failed ones included (with collectTimings).',
    type: 'histogram',
    aggregator: 'sum',
    labelNames: ['member'],
    reset() {},
    get() {
      const values: Array<{ labels: Labels; value: number; metricName: string }> = [];
      for (const m of store.stats().members) {
        if (m.latency === undefined) continue;
        for (const bucket of m.latency.buckets) {
          values.push({
            metricName: `${name}_bucket`,
            labels: { le: String(bucket.leMs / 1000), member: m.member },
            value: bucket.count,
          });
        }
        values.push(
          {
            metricName: `${name}_bucket`,
            labels: { le: '+Inf', member: m.member },
            value: m.latency.count,
          },
          {
            metricName: `${name}_sum`,
            labels: { member: m.member },
            value: m.latency.sumMs / 1000,
          },
          { metricName: `${name}_count`, labels: { member: m.member }, value: m.latency.count },
        );
      }
      return Promise.resolve({
        name,
        help: histogram.help,
        type: histogram.type,
        aggregator: 'sum',
        values,
      });
    },
  };
  return histogram as unknown as Metric;
}
