import { Injectable, ServiceUnavailableException } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import type { HealthCheckResult, HealthIndicatorResult } from '@nestjs/terminus';

/**
 * Terminus health indicator of the shutdown: `up` while the app runs; from the moment
 * {@link enableGracefulShutdown} receives its signal, the whole check answers 503 with status
 * `shutting_down` (as Terminus' own shutdown state, and without its "Health Check has failed"
 * error log: an orderly shutdown is no failure). Put it in the readiness check: Kubernetes then
 * takes the pod out of its Service endpoints during the delay, while the server still serves.
 *
 * ```ts
 * ready() { return this.health.check([() => this.shutdown.isHealthy('shutdown'), …]); }
 * ```
 */
@Injectable()
export class ShutdownHealthIndicator {
  private signal: string | undefined;

  constructor(private readonly healthIndicatorService: HealthIndicatorService) {}

  /** Whether the shutdown began. */
  get shuttingDown(): boolean {
    return this.signal !== undefined;
  }

  /** Fail from now on: called by {@link enableGracefulShutdown} when its signal arrives. */
  markShuttingDown(signal: string): void {
    this.signal ??= signal;
  }

  /**
   * `up` while the app runs. Once the shutdown began it throws a `ServiceUnavailableException`
   * whose body is a Terminus result with status `shutting_down` and this key `down`.
   */
  isHealthy(key = 'shutdown'): HealthIndicatorResult {
    const indicator = this.healthIndicatorService.check(key);
    if (this.signal === undefined) return indicator.up();
    const down = indicator.down({ shuttingDown: true, signal: this.signal });
    const body: HealthCheckResult = {
      status: 'shutting_down',
      info: {},
      error: down,
      details: down,
    };
    throw new ServiceUnavailableException(body);
  }
}
