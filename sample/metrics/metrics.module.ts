import { Controller, Get, Header, Inject, Injectable, Module } from '@nestjs/common';
import type { OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { register } from 'prom-client';
import { K8S_MEMCACHED_STORE } from 'nestjs-k8s';
import type { MemcachedStore } from 'nestjs-k8s';
import { K8sHealthModule, MigrationsHealthIndicator } from 'nestjs-k8s/health';
import { registerCacheMetrics, registerMigrationsMetrics } from 'nestjs-k8s/prometheus';

/**
 * The cache's counters and the migration checks on prom-client's default registry, for the
 * alert rules (sample/prometheus) and the dashboard (sample/grafana).
 */
@Injectable()
class SampleMetrics implements OnModuleInit, OnModuleDestroy {
  private readonly unregister: Array<() => void> = [];

  constructor(
    // null on the in-memory cache (no CACHE_HOST): no cache metrics to export.
    @Inject(K8S_MEMCACHED_STORE) private readonly store: MemcachedStore | null,
    private readonly migrations: MigrationsHealthIndicator,
  ) {}

  onModuleInit(): void {
    if (this.store) this.unregister.push(registerCacheMetrics(this.store, { registry: register }));
    this.unregister.push(registerMigrationsMetrics(this.migrations, { registry: register }));
  }

  onModuleDestroy(): void {
    for (const unregister of this.unregister.splice(0)) unregister();
  }
}

/** `GET /metrics`: the Prometheus text format. */
@Controller('metrics')
class MetricsController {
  @Get()
  @Header('Content-Type', register.contentType)
  metrics(): Promise<string> {
    return register.metrics();
  }
}

@Module({
  // The same indicator instance the readiness probe runs: its checks feed the migrations gauge.
  imports: [K8sHealthModule],
  providers: [SampleMetrics],
  controllers: [MetricsController],
})
export class MetricsModule {}
