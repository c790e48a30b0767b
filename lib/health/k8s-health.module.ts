import { Module } from '@nestjs/common';
import type { DynamicModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import type { TerminusModuleOptions } from '@nestjs/terminus';
import { MemcachedHealthIndicator } from './memcached.health.js';
import { MigrationsHealthIndicator } from './migrations.health.js';

/**
 * Terminus with the indicators of this library: import `K8sHealthModule.forRoot()` in the
 * module of your health controller and inject `HealthCheckService`, Terminus' own indicators
 * (`TypeOrmHealthIndicator`, …), `MemcachedHealthIndicator` and `MigrationsHealthIndicator`.
 * The memcached indicator needs `K8sModule` (global, or imported next to this module).
 */
@Module({})
export class K8sHealthModule {
  /**
   * `options` go to `TerminusModule.forRoot`; `gracefulShutdownTimeoutMs` is the time between
   * SIGTERM (readiness turns `shutting_down`, HTTP 503) and the server closing, for Kubernetes
   * to take the pod out of its Service endpoints. @default {} (no delay)
   */
  static forRoot(options: TerminusModuleOptions = {}): DynamicModule {
    const terminus = TerminusModule.forRoot(options);
    const indicators = [MemcachedHealthIndicator, MigrationsHealthIndicator];
    return {
      module: K8sHealthModule,
      imports: [terminus],
      providers: indicators,
      exports: [terminus, ...indicators],
    };
  }
}
