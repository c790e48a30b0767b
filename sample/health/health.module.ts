import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { K8sHealthModule } from 'nestjs-k8s/health';
import { HealthController } from './health.controller.js';

@Module({
  // The app's own Terminus configuration; K8sHealthModule adds the library's indicators to it.
  imports: [TerminusModule.forRoot({ errorLogStyle: 'pretty' }), K8sHealthModule],
  controllers: [HealthController],
})
export class HealthModule {}
