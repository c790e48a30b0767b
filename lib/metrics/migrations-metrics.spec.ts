import { Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { CheckedDataSource } from '../migrations/migration-check.js';
import { K8sOptionsError } from '../errors/k8s.error.js';
import { registerMigrationsMetrics } from './migrations-metrics.js';

/** A source whose findings the test sets (the e2e test feeds the real indicator). */
function source(checked: CheckedDataSource[]) {
  return { lastChecked: () => checked };
}

describe('registerMigrationsMetrics', () => {
  it('exports pending per reachable data source and every check time, read at scrape time', async () => {
    const checked: CheckedDataSource[] = [];
    const registry = new Registry();
    const unregister = registerMigrationsMetrics(source(checked), { registry });
    // Nothing checked yet: no series at all, not a 0 that would read as "migrated".
    expect(await registry.getSingleMetricAsString('nestjs_k8s_migrations_pending')).not.toMatch(
      /^nestjs_k8s_migrations_pending\{/m,
    );

    checked.push(
      { name: 'postgres db:5432/app', reachable: true, pending: 2, checkedAt: 1_700_000_000_000 },
      { name: 'mysql other:3306/x', reachable: false, pending: 0, checkedAt: 1_700_000_001_500 },
    );
    const text = await registry.metrics();
    expect(text).toContain('nestjs_k8s_migrations_pending{data_source="postgres db:5432/app"} 2');
    // Unreachable: its pending migrations are unknown, so no sample (not 0).
    expect(text).not.toContain('nestjs_k8s_migrations_pending{data_source="mysql other:3306/x"}');
    expect(text).toContain(
      'nestjs_k8s_migrations_last_check_timestamp_seconds{data_source="mysql other:3306/x"} 1700000001.5',
    );

    checked[0] = { ...checked[0], pending: 0 };
    expect(await registry.metrics()).toContain(
      'nestjs_k8s_migrations_pending{data_source="postgres db:5432/app"} 0',
    );
    unregister();
    expect((await registry.metrics()).trim()).toBe('');
  });

  it('refuses a second registration and a bad prefix, and leaves metrics it did not register', () => {
    const registry = new Registry();
    const unregister = registerMigrationsMetrics(source([]), { registry });
    expect(() => registerMigrationsMetrics(source([]), { registry })).toThrow(
      /nestjs_k8s_migrations_pending, nestjs_k8s_migrations_last_check_timestamp_seconds are registered on this registry already: call the function the first registerMigrationsMetrics\(\) returned/,
    );
    expect(() => registerMigrationsMetrics(source([]), { registry, prefix: '9x' })).toThrow(
      K8sOptionsError,
    );
    unregister();
    // Someone else's metric under the same name after ours went: the old remover leaves it.
    const other = new Gauge({
      name: 'nestjs_k8s_migrations_pending',
      help: 'x',
      registers: [registry],
    });
    unregister();
    expect(registry.getSingleMetric('nestjs_k8s_migrations_pending')).toBe(other);
    const prefixed = registerMigrationsMetrics(source([]), { registry, prefix: 'app_' });
    expect(registry.getSingleMetric('app_pending')).toBeDefined();
    prefixed();
  });
});
