import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import type { HealthCheckResult } from '@nestjs/terminus';
import {
  MemcachedHealthIndicator,
  MigrationsHealthIndicator,
  ShutdownHealthIndicator,
} from 'nestjs-k8s/health';

/** The probes a Deployment points at (see docs/health-and-shutdown.md). */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: TypeOrmHealthIndicator,
    private readonly migrations: MigrationsHealthIndicator,
    private readonly cache: MemcachedHealthIndicator,
    private readonly shutdown: ShutdownHealthIndicator,
  ) {}

  /**
   * Liveness: the process serves HTTP. It checks no dependency on purpose: a database or cache
   * outage must not make the kubelet restart every pod, which would not fix it.
   */
  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /**
   * Readiness: the database answers, its schema is migrated, and the cache (`degraded`, still
   * 200, when no member answers). 503 while any of those fails and from SIGTERM on (`shutdown`
   * down: the pod leaves the Service endpoints while it still serves).
   */
  @Get('ready')
  @HealthCheck()
  ready(): Promise<HealthCheckResult> {
    return this.health.check([
      () => this.shutdown.isHealthy('shutdown'),
      () => this.database.pingCheck('database'),
      () => this.migrations.isHealthy('migrations'),
      () => this.cache.isHealthy('cache'),
    ]);
  }
}
