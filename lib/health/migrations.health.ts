import { Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { HealthIndicatorService } from '@nestjs/terminus';
import type { HealthIndicatorResult } from '@nestjs/terminus';
import type { DataSource } from 'typeorm';
import { checkMigrations } from '../migrations/migration-check.js';
import type {
  CheckedDataSource,
  DataSourceMigrationStatus,
} from '../migrations/migration-check.js';
import { withDeadline } from '../util/deadline.js';
import { CachedCheck } from './cached-check.js';

/** The default of {@link MigrationsHealthOptions.timeout}: probes must allow longer than this. */
export const MIGRATIONS_HEALTH_TIMEOUT_MS = 3000;

/** Options of {@link MigrationsHealthIndicator.isHealthy}. */
export interface MigrationsHealthOptions {
  /**
   * The data sources to check. @default the app's default TypeORM `DataSource` (the one
   * `TypeOrmModule.forRoot` registers)
   */
  dataSources?: DataSource | readonly DataSource[];
  /**
   * Report `down` when the check takes longer than this many ms (the check itself goes on, and
   * the next probes wait for it rather than start another). @default 3000
   */
  timeout?: number;
  /**
   * Reuse a result for this many ms (probes arriving meanwhile share it, marked
   * `cachedResponse`), so frequent probes from many pods do not each query the database.
   * @default 5000
   */
  cacheTime?: number;
}

/** What one check found, before it becomes a Terminus result. */
interface MigrationsProbe {
  readonly ready: boolean;
  readonly detail: Record<string, unknown>;
}

/**
 * Terminus health indicator of the database schema: `down` while any migration is pending or a
 * data source is unreachable, `up` once all are applied. Read-only (`checkMigrations`: nothing
 * is created, not even the migrations table); a result is reused for `cacheTime` ms and
 * concurrent probes share one check. The detail names each data source (type, host, port,
 * database; never credentials) with its pending migrations, or why it is unreachable. It never
 * throws.
 *
 * ```ts
 * @Get('ready') @HealthCheck()
 * ready() { return this.health.check([() => this.migrations.isHealthy('migrations')]); }
 * ```
 */
@Injectable()
export class MigrationsHealthIndicator {
  private readonly checks = new CachedCheck<MigrationsProbe>();
  /** The latest check's finding per data source name, for metrics. */
  private readonly checked = new Map<string, CheckedDataSource>();
  /** A number per data source object, to key the cache by which data sources a probe checks. */
  private readonly ids = new WeakMap<DataSource, number>();
  private lastId = 0;

  constructor(
    private readonly healthIndicatorService: HealthIndicatorService,
    private readonly moduleRef: ModuleRef,
  ) {}

  /** Check the migrations; the result is keyed by `key` in the health check's output. */
  async isHealthy<const Key extends string = 'migrations'>(
    key: Key = 'migrations' as Key,
    options: MigrationsHealthOptions = {},
  ): Promise<HealthIndicatorResult<Key>> {
    const session = this.healthIndicatorService.check(key);
    const timeout = options.timeout ?? MIGRATIONS_HEALTH_TIMEOUT_MS;
    const outcome = await withDeadline(
      this.checks.run(
        `${key}:${this.cacheKey(options.dataSources)}`,
        options.cacheTime ?? 5000,
        () => this.check(options.dataSources),
      ),
      timeout,
      () => undefined,
    );
    if (outcome === undefined) {
      return session.down({ message: `the migration check took longer than ${timeout} ms` });
    }
    const detail = { ...outcome.value.detail, ...(outcome.cached && { cachedResponse: true }) };
    return outcome.value.ready ? session.up(detail) : session.down(detail);
  }

  /**
   * Every data source a check has read so far, as its latest check found it: what
   * `registerMigrationsMetrics` (`nestjs-k8s/prometheus`) exports. Updated by the checks the
   * indicator runs (the readiness probes), never by a check of its own.
   */
  lastChecked(): CheckedDataSource[] {
    return [...this.checked.values()];
  }

  private cacheKey(dataSources: MigrationsHealthOptions['dataSources']): string {
    if (dataSources === undefined) return 'default';
    const list: readonly DataSource[] = Array.isArray(dataSources)
      ? dataSources
      : [dataSources as DataSource];
    return list
      .map((dataSource) => {
        let id = this.ids.get(dataSource);
        if (id === undefined) this.ids.set(dataSource, (id = ++this.lastId));
        return id;
      })
      .join(',');
  }

  private async check(given: MigrationsHealthOptions['dataSources']): Promise<MigrationsProbe> {
    try {
      const result = await checkMigrations(given ?? (await this.defaultDataSource()));
      const checkedAt = Date.now();
      for (const status of result.dataSources) {
        const { name, reachable } = status;
        this.checked.set(name, { name, reachable, pending: status.pending.length, checkedAt });
      }
      return { ready: result.ready, detail: describe(result.dataSources) };
    } catch (error) {
      // checkMigrations reports what it can per data source; this is anything else (a missing
      // DataSource, typeorm not installed). Its messages carry no options, so no credentials.
      return {
        ready: false,
        detail: { message: error instanceof Error ? error.message : String(error) },
      };
    }
  }

  private async defaultDataSource(): Promise<DataSource> {
    // TypeORM is an optional peer: loaded only by apps that check migrations. @nestjs/typeorm
    // registers the default data source under the DataSource class itself.
    const { DataSource } = await import('typeorm');
    try {
      return this.moduleRef.get(DataSource, { strict: false });
    } catch {
      throw new Error(
        'No TypeORM DataSource in the app: import TypeOrmModule.forRoot(…), or pass the data ' +
          'sources to check as isHealthy(key, { dataSources })',
      );
    }
  }
}

/** The detail of a check: every data source's state, the pending names, and a one-line why. */
function describe(statuses: readonly DataSourceMigrationStatus[]): Record<string, unknown> {
  const problems: string[] = [];
  for (const status of statuses) {
    if (!status.reachable) {
      problems.push(`${status.name} is unusable (${status.problem}): ${status.reason}`);
    } else if (status.pending.length > 0) {
      problems.push(
        `${status.name} has ${status.pending.length} pending migration(s) (run migrate): ` +
          status.pending.join(', '),
      );
    }
  }
  return {
    ...(problems.length > 0 && { message: problems.join('; ') }),
    pending: statuses.flatMap((status) => status.pending),
    dataSources: statuses,
  };
}
