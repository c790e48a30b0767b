import { Module } from '@nestjs/common';
import type { DynamicModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import type { TerminusModuleOptions } from '@nestjs/terminus';
import { MemcachedHealthIndicator } from './memcached.health.js';
import { MigrationsHealthIndicator } from './migrations.health.js';
import { ShutdownHealthIndicator } from './shutdown.health.js';

const INDICATORS = [MemcachedHealthIndicator, MigrationsHealthIndicator, ShutdownHealthIndicator];

/**
 * The indicators of this library: `MemcachedHealthIndicator`, `MigrationsHealthIndicator` and
 * `ShutdownHealthIndicator`. Two ways in:
 *
 * - `K8sHealthModule` next to the app's own `TerminusModule.forRoot({...})`: the app keeps its
 *   Terminus configuration (logger, error style) and its `HealthCheckService`;
 * - `K8sHealthModule.forRoot(options?)`: Terminus configured with `options` and re-exported, for
 *   apps with no Terminus set-up of their own.
 *
 * The memcached indicator needs `K8sModule` (global, or imported next to this module).
 */
@Module({
  // The plain TerminusModule brings the HealthIndicatorService the indicators build results with;
  // it configures nothing the app's own TerminusModule.forRoot() sets.
  imports: [TerminusModule],
  providers: INDICATORS,
  exports: INDICATORS,
})
export class K8sHealthModule {
  /**
   * The indicators, plus `TerminusModule.forRoot(options)` re-exported (`HealthCheckService`,
   * Terminus' own indicators). With {@link enableGracefulShutdown}, leave
   * `gracefulShutdownTimeoutMs` unset: that helper's `delayMs` replaces it. @default {}
   */
  static forRoot(options: TerminusModuleOptions = {}): DynamicModule {
    const terminus = TerminusModule.forRoot(options);
    return { module: K8sHealthModule, imports: [terminus], exports: [terminus] };
  }
}
