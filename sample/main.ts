import 'reflect-metadata';
import type { Server } from 'node:http';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { runK8sCommand } from 'nestjs-k8s';
import { databaseOptions } from './database/database.options.js';
import { shutdownConfigFromEnv } from './health/shutdown.config.js';

// `checkmigrations` and `migrate` run here and exit with their code: the HTTP server, the cache
// pool and TypeORM's own connection retries below never start for them.
await runK8sCommand({ dataSources: () => databaseOptions() });
// Loaded only when no command ran: the app's own settings (shutdown timing, cache options) are
// read when its modules load, and a mistake there must not stop `migrate` or `checkmigrations`.
const { AppModule } = await import('./app.module.js');

const logger = new Logger('Sample');
const shutdown = shutdownConfigFromEnv();
const app = await NestFactory.create(AppModule);
// On SIGTERM (the kubelet) or SIGINT: /health/ready turns 503 `shutting_down` and traffic is
// still served for `delayMs` (Terminus' gracefulShutdownTimeoutMs, see HealthModule); then the
// server stops accepting and waits for the requests in flight; then the cache pool, its timers
// and the database connections close (onApplicationShutdown), and the process exits with 0.
app.enableShutdownHooks(['SIGTERM', 'SIGINT'], { useProcessExit: true });
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    logger.log(`${signal}: shutting down (readiness now fails)`);
    const server = app.getHttpServer() as Server;
    // Once the server stopped accepting, Node closes the connections idle at that moment but
    // keeps those whose request ends later open for keep-alive (5 s): close each as soon as it
    // is idle, so clients reconnect to another pod and the process need not wait.
    setTimeout(
      () => setInterval(() => server.closeIdleConnections(), 100).unref(),
      shutdown.delayMs,
    ).unref();
    // A request that never ends must not hold the pool and the database open until SIGKILL.
    setTimeout(() => {
      logger.warn(
        `Requests still running ${shutdown.drainTimeoutMs} ms after the server stopped ` +
          'accepting: closing their connections',
      );
      server.closeAllConnections();
    }, shutdown.delayMs + shutdown.drainTimeoutMs).unref();
  });
}
const port = Number(process.env.PORT ?? 3000);
await app.listen(port);
logger.log(`Listening on port ${port}`);
