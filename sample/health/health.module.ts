import { Module } from '@nestjs/common';
import { K8sHealthModule } from 'nestjs-k8s/health';
import { HealthController } from './health.controller.js';
import { shutdownConfigFromEnv } from './shutdown.config.js';

@Module({
  // From SIGTERM, readiness answers 503 `shutting_down` for the delay before the server closes.
  imports: [
    K8sHealthModule.forRoot({ gracefulShutdownTimeoutMs: shutdownConfigFromEnv().delayMs }),
  ],
  controllers: [HealthController],
})
export class HealthModule {}
