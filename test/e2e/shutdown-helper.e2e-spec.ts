import { request as httpRequest, Agent } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { ConsoleLogger, Controller, Get, Injectable, Module, Query } from '@nestjs/common';
import type { INestApplication, OnApplicationShutdown } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheckService, HealthIndicatorService, TerminusModule } from '@nestjs/terminus';
import { afterEach, describe, expect, it } from 'vitest';
import {
  K8sHealthModule,
  ShutdownHealthIndicator,
  enableGracefulShutdown,
} from 'nestjs-k8s/health';
import type { GracefulShutdown, GracefulShutdownOptions } from 'nestjs-k8s/health';
import { freePort } from '../support/memcached.js';
import { startScript } from '../support/run-command.js';
import { scaled } from '../support/timing.js';

// enableGracefulShutdown on a real Nest app over real HTTP on loopback, driven through the
// handle's shutdown() (the signal path, exit code included, is covered by shutdown.e2e-spec.ts
// on the built sample). Each test builds its own app.

/** What one app saw: requests that started, whether its shutdown hook ran, what its Terminus logged. */
interface Observed {
  started: Array<() => void>;
  closed: boolean;
  terminusErrors: string[];
}

function buildApp(observed: Observed): Promise<INestApplication> {
  @Controller()
  class TestController {
    constructor(
      private readonly health: HealthCheckService,
      private readonly shutdown: ShutdownHealthIndicator,
      private readonly indicators: HealthIndicatorService,
    ) {}

    @Get('wait')
    async wait(@Query('ms') ms: string): Promise<{ waited: number }> {
      observed.started.shift()?.();
      await delay(Number(ms));
      return { waited: Number(ms) };
    }

    @Get('ready')
    ready() {
      return this.health.check([() => this.shutdown.isHealthy('shutdown')]);
    }

    @Get('failing')
    failing() {
      return this.health.check([
        () => this.shutdown.isHealthy('shutdown'),
        () => this.indicators.check('dependency').down('unreachable'),
      ]);
    }
  }

  @Injectable()
  class CloseRecorder implements OnApplicationShutdown {
    onApplicationShutdown(): void {
      observed.closed = true;
    }
  }

  /** The app's own Terminus logger: proves its configuration is the one in effect. */
  class AppTerminusLogger extends ConsoleLogger {
    override error(message: unknown): void {
      observed.terminusErrors.push(String(message));
    }
  }

  @Module({
    imports: [TerminusModule.forRoot({ logger: AppTerminusLogger }), K8sHealthModule],
    controllers: [TestController],
    providers: [CloseRecorder],
  })
  class AppModule {}

  return NestFactory.create(AppModule, { logger: false });
}

let running: { app: INestApplication; shutdown: GracefulShutdown } | undefined;

async function start(
  options: GracefulShutdownOptions,
): Promise<{ app: INestApplication; shutdown: GracefulShutdown; url: string; observed: Observed }> {
  const observed: Observed = { started: [], closed: false, terminusErrors: [] };
  const app = await buildApp(observed);
  // No signal is sent to the test worker: SIGUSR2 is only a placeholder the handle removes again.
  const shutdown = enableGracefulShutdown(app, { signals: ['SIGUSR2'], exit: false, ...options });
  await app.listen(0, '127.0.0.1');
  running = { app, shutdown };
  const { port } = (app.getHttpServer() as Server).address() as AddressInfo;
  return { app, shutdown, url: `http://127.0.0.1:${port}`, observed };
}

/** A request to `/wait?ms=…` and a promise that resolves once the handler runs. */
function slowRequest(
  url: string,
  observed: Observed,
  ms: number,
  agent?: Agent,
): {
  started: Promise<void>;
  response: Promise<{ status: number; body: string }>;
  socketClosed: Promise<void>;
} {
  const started = new Promise<void>((resolve) => observed.started.push(resolve));
  let onSocketClosed!: () => void;
  const socketClosed = new Promise<void>((resolve) => (onSocketClosed = resolve));
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest(`${url}/wait?ms=${ms}`, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('socket', (socket) => socket.once('close', onSocketClosed));
    req.on('error', reject);
    req.end();
  });
  return { started, response, socketClosed };
}

afterEach(async () => {
  // A failed test must not leave its server listening.
  await running?.shutdown.shutdown().catch(() => undefined);
  running = undefined;
});

describe('enableGracefulShutdown', () => {
  it('during the delay: readiness 503 shutting_down, new requests still served; then in-flight requests finish and the app closes', async () => {
    const { app, shutdown, url, observed } = await start({ delayMs: 1000, drainTimeoutMs: 20_000 });
    const before = await fetch(`${url}/ready`);
    expect(before.status).toBe(200);

    const slow = slowRequest(url, observed, 1500);
    await slow.started;
    const done = shutdown.shutdown('SIGTERM');

    const ready = await fetch(`${url}/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({
      status: 'shutting_down',
      details: { shutdown: { status: 'down', shuttingDown: true, signal: 'SIGTERM' } },
    });
    // Arrived after the signal, within the delay: served all the same.
    const during = await fetch(`${url}/wait?ms=0`);
    expect(during.status).toBe(200);
    // An orderly shutdown is no failure: the app's Terminus logged no error for it.
    expect(observed.terminusErrors).toEqual([]);

    expect(observed.closed).toBe(false);
    expect((await slow.response).status).toBe(200);
    await done;
    expect(observed.closed).toBe(true);
    expect((app.getHttpServer() as Server).listening).toBe(false);
    // The same promise for every call.
    expect(shutdown.shutdown()).toBe(shutdown.shutdown());
  });

  it('closes a keep-alive connection as soon as its last request ends, without waiting for the keep-alive timeout', async () => {
    const { app, shutdown, url, observed } = await start({ delayMs: 0, drainTimeoutMs: 600_000 });
    // Longer than this test's timeout: only the sweep can close the connection in time.
    (app.getHttpServer() as Server).keepAliveTimeout = 600_000;
    const agent = new Agent({ keepAlive: true });
    try {
      const slow = slowRequest(url, observed, 800, agent);
      await slow.started;
      const done = shutdown.shutdown('SIGTERM');
      const response = await slow.response;
      expect(response.status).toBe(200);
      await slow.socketClosed;
      await done;
      expect(observed.closed).toBe(true);
    } finally {
      agent.destroy();
    }
  });

  it('cuts a request that outlives drainTimeoutMs, then still runs the shutdown hooks', async () => {
    const { shutdown, url, observed } = await start({ delayMs: 0, drainTimeoutMs: 300 });
    const stuck = slowRequest(url, observed, 60_000);
    await stuck.started;
    const done = shutdown.shutdown('SIGTERM');
    await expect(stuck.response).rejects.toThrow();
    await done;
    expect(observed.closed).toBe(true);
  });

  it("composes with the app's own TerminusModule configuration", async () => {
    const { url, observed } = await start({});
    const failing = await fetch(`${url}/failing`);
    expect(failing.status).toBe(503);
    expect(await failing.json()).toMatchObject({
      status: 'error',
      details: { shutdown: { status: 'up' }, dependency: { status: 'down' } },
    });
    // The failure went to the logger the app gave its own TerminusModule.forRoot().
    expect(observed.terminusErrors.join('\n')).toContain('Health Check has failed');
  });

  it('without K8sHealthModule, on SIGTERM: still serves during the delay, then closes and exits 0', async () => {
    // A process of its own: the exit code is the point, and an app made by NestFactory.create
    // ends the process on a failed provider lookup (which this path once made).
    const delayMs = scaled(1500);
    const port = await freePort('127.0.0.1');
    const app = startScript(
      `
import 'reflect-metadata';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { enableGracefulShutdown } from './dist/lib/health/index.js';
class PingController { ping() { return 'pong'; } }
Get('ping')(PingController.prototype, 'ping', Object.getOwnPropertyDescriptor(PingController.prototype, 'ping'));
Controller()(PingController);
class AppModule {}
Module({ controllers: [PingController] })(AppModule);
const app = await NestFactory.create(AppModule, { logger: ['log', 'error', 'warn'] });
enableGracefulShutdown(app, { delayMs: ${delayMs}, drainTimeoutMs: 1000 });
await app.listen(${port}, '127.0.0.1');
console.log('listening');
`,
      [],
      { timeoutMs: scaled(20_000) },
    );
    await app.waitForOutput('listening');
    const signalled = Date.now();
    app.child.kill('SIGTERM');
    await app.waitForOutput('SIGTERM: shutting down');
    // Within the delay the server still answers.
    const during = await fetch(`http://127.0.0.1:${port}/ping`);
    expect(during.status).toBe(200);
    expect(await during.text()).toBe('pong');
    const ended = await app.result;
    expect(ended.stderr + ended.stdout).not.toMatch(/UnknownElementException|Error/);
    expect(ended.stdout).toContain('no ShutdownHealthIndicator: readiness cannot tell');
    expect(ended.stdout).toContain('Closed');
    expect(ended.code).toBe(0);
    expect(Date.now() - signalled).toBeGreaterThanOrEqual(delayMs);
  });

  it('refuses bad timings before touching the app', () => {
    expect(() => enableGracefulShutdown({} as INestApplication, { delayMs: -5 })).toThrow(
      /delayMs must be a whole number/,
    );
  });
});
