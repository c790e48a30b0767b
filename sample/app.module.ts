import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { K8sModule } from 'nestjs-k8s';
import { CacheDemoController } from './cache-demo/cache-demo.controller.js';
import { cacheOptionsFromEnv } from './config.js';
import { databaseOptions } from './database/database.options.js';
import { HealthModule } from './health/health.module.js';
import { ItemsModule } from './items/items.module.js';
import { MetricsModule } from './metrics/metrics.module.js';

@Module({
  imports: [
    K8sModule.forRoot({ isGlobal: true, cache: cacheOptionsFromEnv() }),
    // Read at boot from the same options the migration commands use.
    TypeOrmModule.forRootAsync({ useFactory: () => databaseOptions() }),
    ItemsModule,
    HealthModule,
    MetricsModule,
  ],
  controllers: [CacheDemoController],
})
export class AppModule {}
