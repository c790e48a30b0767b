import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { runK8sCommand } from 'nestjs-k8s';
import { databaseOptions } from './database/database.options.js';
import { shutdownConfigFromEnv } from './health/shutdown.config.js';

// `checkmigrations` and `migrate` run here and exit with their code: the HTTP server, the cache
// pool and TypeORM's own connection retries below never start for them.
await runK8sCommand({ dataSources: () => databaseOptions() });
// Loaded only when no command ran: the app's own settings (shutdown timing, cache options) are
// read when its modules load, and a mistake there must not stop `migrate` or `checkmigrations`;
// nor do the commands need Terminus.
const { AppModule } = await import('./app.module.js');
const { enableGracefulShutdown } = await import('nestjs-k8s/health');

const app = await NestFactory.create(AppModule);
// SIGTERM: readiness 503 while still serving for the delay, then drain, close, exit 0.
enableGracefulShutdown(app, shutdownConfigFromEnv());
const port = Number(process.env.PORT ?? 3000);
await app.listen(port);
new Logger('Sample').log(`Listening on port ${port}`);
