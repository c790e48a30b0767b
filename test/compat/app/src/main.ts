import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { runK8sCommand } from 'nestjs-k8s';
import { AppModule } from './app.module.js';
import { databaseOptions } from './database.options.js';

async function bootstrap(): Promise<void> {
  // `checkmigrations` and `migrate` run here and exit with their code; the app never starts for them.
  await runK8sCommand({ dataSources: () => databaseOptions() });
  const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
  app.enableShutdownHooks();
  await app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
  console.log(`listening on ${await app.getUrl()}`);
}
void bootstrap();
