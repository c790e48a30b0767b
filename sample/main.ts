import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { runK8sCommand } from 'nestjs-k8s';
import { AppModule } from './app.module.js';
import { databaseOptions } from './database/database.options.js';

// `checkmigrations` and `migrate` run here and exit with their code: the HTTP server, the cache
// pool and TypeORM's own connection retries below never start for them.
await runK8sCommand({ dataSources: () => databaseOptions() });

const app = await NestFactory.create(AppModule);
app.enableShutdownHooks();
const port = Number(process.env.PORT ?? 3000);
await app.listen(port);
new Logger('Sample').log(`Listening on port ${port}`);
