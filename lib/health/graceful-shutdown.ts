import type { Server } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import type { INestApplication } from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';
import { K8sOptionsError } from '../errors/k8s.error.js';
import { ShutdownHealthIndicator } from './shutdown.health.js';

/** Options of {@link enableGracefulShutdown}. */
export interface GracefulShutdownOptions {
  /**
   * Time between the signal and the server closing, in ms: readiness answers 503 meanwhile
   * while traffic is still served, until Kubernetes has taken the pod out of its Service
   * endpoints. @default 5000 in a pod (`KUBERNETES_SERVICE_HOST` set), else 0
   */
  delayMs?: number;
  /**
   * Time the requests in flight get to finish once the server stopped accepting, in ms; then
   * their connections are cut, so the pool and the database still close before the kubelet's
   * SIGKILL. Keep `delayMs + drainTimeoutMs` below `terminationGracePeriodSeconds`.
   * @default 20000
   */
  drainTimeoutMs?: number;
  /** The signals that start the shutdown. @default ['SIGTERM', 'SIGINT'] */
  signals?: readonly NodeJS.Signals[];
  /**
   * End the process once the app closed: exit code 0, or 1 when closing failed (as Nest's
   * `enableShutdownHooks(…, { useProcessExit: true })`), so a stray timer cannot keep the pod
   * until SIGKILL. `false` leaves the process to end by itself. @default true
   */
  exit?: boolean;
}

/** The handle {@link enableGracefulShutdown} returns. */
export interface GracefulShutdown {
  /** The options in effect, defaults applied. */
  readonly options: Readonly<Required<GracefulShutdownOptions>>;
  /**
   * Run the shutdown now, as the signal would (without exiting the process): the same promise
   * for every call. The signal listeners are removed once it ends.
   */
  shutdown(signal?: string): Promise<void>;
}

/** How often idle keep-alive connections are closed once the server stopped accepting. */
const IDLE_SWEEP_MS = 100;

/**
 * Shut the app down the way Kubernetes expects, on SIGTERM (and SIGINT):
 *
 * 1. readiness turns `down` (503) through {@link ShutdownHealthIndicator}, while the server still
 *    serves for `delayMs` (the endpoints controller and every node's kube-proxy need that long
 *    to stop sending traffic here);
 * 2. `app.close()`: Nest's shutdown hooks, then the server stops accepting; each keep-alive
 *    connection is closed as soon as it is idle, so clients reconnect to another pod;
 * 3. requests still running `drainTimeoutMs` after the server stopped accepting get their
 *    connections cut;
 * 4. `onApplicationShutdown`: the cache pool and the TypeORM data sources close; the process
 *    exits with 0.
 *
 * Call it instead of `app.enableShutdownHooks()` (not both), before `app.listen()`. Leave
 * Terminus' `gracefulShutdownTimeoutMs` unset: this delay replaces it.
 */
export function enableGracefulShutdown(
  app: INestApplication,
  options: GracefulShutdownOptions = {},
): GracefulShutdown {
  const resolved = resolveShutdownOptions(options);
  const logger = new Logger('GracefulShutdown');
  let running: Promise<void> | undefined;

  const shutdown = (signal = 'shutdown'): Promise<void> => {
    // Once the app closed, its signals are no longer ours to handle (as Nest's own hooks).
    running ??= run(app, resolved, signal, logger).finally(() => {
      for (const name of resolved.signals) process.removeListener(name, onSignal);
    });
    return running;
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    void shutdown(signal).then(
      () => {
        if (resolved.exit) process.exit(0);
      },
      (error: unknown) => {
        logger.error(`Closing the app failed: ${String(error)}`, (error as Error)?.stack);
        if (resolved.exit) process.exit(1);
      },
    );
  };
  for (const signal of resolved.signals) process.once(signal, onSignal);
  return { options: resolved, shutdown };
}

async function run(
  app: INestApplication,
  options: Required<GracefulShutdownOptions>,
  signal: string,
  logger: Logger,
): Promise<void> {
  const indicators = shutdownIndicators(app);
  for (const indicator of indicators) indicator.markShuttingDown(signal);
  logger.log(
    indicators.length > 0
      ? `${signal}: shutting down; readiness fails, serving ${options.delayMs} ms more`
      : `${signal}: shutting down; serving ${options.delayMs} ms more (no ShutdownHealthIndicator: readiness cannot tell)`,
  );
  if (options.delayMs > 0) await delay(options.delayMs);

  const server = app.getHttpServer() as Server | undefined;
  const sweep = server ? drainConnections(server, options.drainTimeoutMs, logger) : undefined;
  try {
    await app.close();
  } finally {
    if (sweep) clearInterval(sweep);
  }
  logger.log('Closed');
}

/**
 * Once `server` stopped accepting: close every idle keep-alive connection as soon as it is idle
 * (Node closes only those idle at `close()` time), and cut the rest after `drainTimeoutMs`.
 */
function drainConnections(server: Server, drainTimeoutMs: number, logger: Logger): NodeJS.Timeout {
  let closedAt: number | undefined;
  let cut = false;
  const sweep = setInterval(() => {
    if (server.listening || cut) return;
    closedAt ??= Date.now();
    server.closeIdleConnections();
    if (Date.now() - closedAt >= drainTimeoutMs) {
      cut = true;
      logger.warn(
        `Requests still running ${drainTimeoutMs} ms after the server stopped accepting: ` +
          'closing their connections',
      );
      server.closeAllConnections();
    }
  }, IDLE_SWEEP_MS);
  sweep.unref();
  return sweep;
}

/**
 * Every ShutdownHealthIndicator of the app (one per K8sHealthModule import); none without it.
 * Found by walking the modules rather than `app.get(ShutdownHealthIndicator)`: on an app made by
 * `NestFactory.create`, a failed `get` does not throw to its caller but ends the process.
 */
function shutdownIndicators(app: INestApplication): ShutdownHealthIndicator[] {
  const found = new Set<ShutdownHealthIndicator>();
  for (const module of app.get(ModulesContainer).values()) {
    for (const provider of module.providers.values()) {
      if (provider.instance instanceof ShutdownHealthIndicator) found.add(provider.instance);
    }
  }
  return [...found];
}

/** Defaults applied and every value checked, once. */
export function resolveShutdownOptions(
  options: GracefulShutdownOptions,
  env: NodeJS.ProcessEnv = process.env,
): Required<GracefulShutdownOptions> {
  const resolved = {
    delayMs: options.delayMs ?? (env.KUBERNETES_SERVICE_HOST ? 5000 : 0),
    drainTimeoutMs: options.drainTimeoutMs ?? 20_000,
    signals: options.signals ?? (['SIGTERM', 'SIGINT'] as const),
    exit: options.exit ?? true,
  };
  for (const name of ['delayMs', 'drainTimeoutMs'] as const) {
    const value = resolved[name];
    if (!Number.isInteger(value) || value < 0) {
      throw new K8sOptionsError(
        `enableGracefulShutdown: ${name} must be a whole number of milliseconds ≥ 0, not ${String(value)}`,
      );
    }
  }
  if (resolved.signals.length === 0) {
    throw new K8sOptionsError('enableGracefulShutdown: signals must name at least one signal');
  }
  return resolved;
}
