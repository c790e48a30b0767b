import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { K8sModule } from 'nestjs-k8s';
import { K8sHealthModule } from 'nestjs-k8s/health';
import { AppController } from './app.controller.js';
import { databaseOptions } from './database.options.js';
import { HealthController } from './health.controller.js';

@Module({
  imports: [
    K8sModule.forRoot({
      isGlobal: true,
      cache: {
        host: process.env.CACHE_HOST,
        port: Number(process.env.CACHE_PORT),
        dnsServers: process.env.CACHE_DNS_SERVERS?.split(','),
        namespace: 'compat',
        ttl: 60_000,
      },
    }),
    TypeOrmModule.forRootAsync({ useFactory: () => databaseOptions() }),
    K8sHealthModule.forRoot(),
  ],
  controllers: [AppController, HealthController],
})
export class AppModule {}
