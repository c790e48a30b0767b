import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Controller, Get, Module, Param } from '@nestjs/common';
import type { INestApplication, ModuleMetadata } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import type { HealthIndicatorResult } from '@nestjs/terminus';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CacheService, K8S_MEMCACHED_STORE, K8sModule } from 'nestjs-k8s';
import type { MemcachedStore } from 'nestjs-k8s';
import {
  K8sHealthModule,
  MemcachedHealthIndicator,
  MigrationsHealthIndicator,
} from 'nestjs-k8s/health';
import { databaseOptions } from '../../sample/database/database.options.js';
import {
  POSTGRES,
  createPostgresDatabase,
  postgresReady,
  withPostgresAdmin,
} from '../support/databases.js';
import type { ThrowAwayDatabase } from '../support/databases.js';
import { startDnsServer } from '../support/dns-server.js';
import type { TestDnsServer } from '../support/dns-server.js';
import { memcachedAvailable, startMemcached, stopAllMemcached } from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { findBinary, serviceAvailable } from '../support/services.js';
import { DEGRADED_CACHE, DEGRADED_CHECK_STATUS, TERMINUS_LINE } from '../support/terminus-line.js';
import { closedPort, startTcpProxy } from '../support/tcp-proxy.js';
import type { TcpProxy } from '../support/tcp-proxy.js';
import { makeTestCertificates } from '../support/test-certificates.js';
import type { TestCertificates } from '../support/test-certificates.js';
import { waitForValue } from '../support/wait-for.js';

// This file's loopback range: 127.0.11.1-9 (test/e2e/shutdown.e2e-spec.ts uses 127.0.11.10+).

const postgres = await postgresReady();

interface Indicators {
  cache: MemcachedHealthIndicator;
  migrations: MigrationsHealthIndicator;
}
type Check = (indicators: Indicators) => Promise<HealthIndicatorResult>;

/** What a Terminus health check answered over HTTP. */
interface Probe {
  http: number;
  body: {
    status: string;
    details: Record<string, Record<string, unknown> & { status: string }>;
  };
  /** The raw body, to search for what must never be in it. */
  text: string;
}

/**
 * A real Nest app on a loopback port whose `GET /check/:name` runs the named check through
 * Terminus' `HealthCheckService`, as a user's health controller does.
 */
async function startApp(
  imports: ModuleMetadata['imports'],
  checks: Record<string, Check>,
): Promise<{ app: INestApplication; probe(name: string): Promise<Probe> }> {
  @Controller()
  class ProbeController {
    constructor(
      private readonly health: HealthCheckService,
      private readonly cache: MemcachedHealthIndicator,
      private readonly migrations: MigrationsHealthIndicator,
    ) {}

    @Get('check/:name')
    check(@Param('name') name: string) {
      return this.health.check([
        () => checks[name]({ cache: this.cache, migrations: this.migrations }),
      ]);
    }
  }
  @Module({
    imports: [...(imports ?? []), K8sHealthModule.forRoot()],
    controllers: [ProbeController],
  })
  class TestModule {}

  const app = await NestFactory.create(TestModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  const url = await app.getUrl();
  return {
    app,
    probe: async (name) => {
      const response = await fetch(`${url}/check/${name}`);
      const text = await response.text();
      return { http: response.status, body: JSON.parse(text) as Probe['body'], text };
    },
  };
}

const apps: INestApplication[] = [];
async function track<T extends { app: INestApplication }>(started: Promise<T>): Promise<T> {
  const result = await started;
  apps.push(result.app);
  return result;
}
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

describe('MemcachedHealthIndicator', () => {
  it(`runs on the Terminus line under test (${TERMINUS_LINE})`, () => {
    // Terminus 12 added `degraded` to the indicator session; 11 has only up and down.
    const session = new HealthIndicatorService().check('line') as { degraded?: unknown };
    expect(typeof session.degraded).toBe(TERMINUS_LINE === '12' ? 'function' : 'undefined');
  });

  it('is up on the in-memory cache, with backend memory', async () => {
    const { probe } = await track(
      startApp([K8sModule.forRoot({ isGlobal: true, cache: {} })], {
        cache: ({ cache }) => cache.isHealthy('cache'),
      }),
    );
    const result = await probe('cache');
    expect(result.http).toBe(200);
    expect(result.body.details.cache).toEqual({ status: 'up', backend: 'memory' });
  });

  it('is down, naming what to import, when the app has no K8sModule', async () => {
    const { probe } = await track(startApp([], { cache: ({ cache }) => cache.isHealthy('cache') }));
    const result = await probe('cache');
    expect(result.http).toBe(503);
    expect(result.body.details.cache.status).toBe('down');
    expect(result.body.details.cache.message).toMatch(/K8sModule\.forRoot/);
  });

  describe.runIf(memcachedAvailable())('on real memcached members', () => {
    let servers: MemcachedProcess[];
    let dns: TestDnsServer;

    beforeAll(async () => {
      dns = await startDnsServer();
    });
    // Fresh members for each test: one test stops them all.
    beforeEach(async () => {
      servers = await Promise.all([1, 2].map((i) => startMemcached({ host: `127.0.11.${i}` })));
    });
    afterEach(async () => {
      // The apps first, while their members still answer.
      await Promise.all(apps.splice(0).map((app) => app.close()));
      await stopAllMemcached();
    });
    afterAll(async () => {
      await dns?.close();
    });

    it('is up while members answer; all killed: degraded with HTTP 200, down only with failWhenEmpty', async () => {
      const ids = servers.map((s) => s.id).sort();
      const { app, probe } = await track(
        startApp(
          [
            K8sModule.forRoot({
              isGlobal: true,
              // A long retryTimeout: ejected members stay out for the whole test.
              cache: { host: ids.join(','), retryTimeout: 60_000 },
            }),
          ],
          {
            fresh: ({ cache }) => cache.isHealthy('cache', { cacheTime: 0 }),
            cached: ({ cache }) => cache.isHealthy('cache-cached', { cacheTime: 60_000 }),
            strict: ({ cache }) => cache.isHealthy('cache', { cacheTime: 0, failWhenEmpty: true }),
          },
        ),
      );

      const up = await probe('fresh');
      expect(up.http).toBe(200);
      expect(up.body.status).toBe('ok');
      expect(up.body.details.cache).toMatchObject({
        status: 'up',
        backend: 'memcached',
        members: ids,
        answering: ids,
        ejected: [],
      });
      expect((await probe('cached')).body.details['cache-cached'].status).toBe('up');

      await Promise.all(servers.map((s) => s.stop()));

      const silent = await probe('fresh');
      expect(silent.http).toBe(200);
      expect(silent.body.status).toBe(DEGRADED_CHECK_STATUS);
      expect(silent.body.details.cache).toMatchObject({
        ...DEGRADED_CACHE,
        members: ids,
        answering: [],
        ejected: [],
      });
      expect(silent.body.details.cache.message).toMatch(/no memcached member answered/);
      // Within its cache time the earlier result is served: no connection is attempted.
      expect((await probe('cached')).body.details['cache-cached']).toMatchObject({
        status: 'up',
        cachedResponse: true,
      });

      // Traffic on dead members ejects them from the ring (failureLimit 2 each).
      const cacheService = app.get(CacheService);
      const store = app.get<MemcachedStore>(K8S_MEMCACHED_STORE);
      for (let i = 0; i < 50 && store.stats().ring.length > 0; i++) {
        await cacheService.get(`key-${i}`);
      }
      expect(store.stats().ring).toEqual([]);

      const ejected = await probe('fresh');
      expect(ejected.http).toBe(200);
      expect(ejected.body.details.cache).toMatchObject({
        ...DEGRADED_CACHE,
        members: ids,
        ejected: ids,
        answering: [],
      });
      expect(ejected.body.details.cache.message).toMatch(/all 2 memcached members are ejected/);

      const strict = await probe('strict');
      expect(strict.http).toBe(503);
      expect(strict.body.status).toBe('error');
      expect(strict.body.details.cache.status).toBe('down');
    });

    it('reports the last lookup error and the last refresh time of DNS discovery', async () => {
      const name = 'memcached.health.local';
      dns.setNxdomain(name);
      const { app, probe } = await track(
        startApp(
          [
            K8sModule.forRoot({
              isGlobal: true,
              cache: {
                host: name,
                port: servers[0].port,
                dnsServers: [dns.address],
                refreshInterval: 0,
                minRefreshInterval: 0,
              },
            }),
          ],
          { fresh: ({ cache }) => cache.isHealthy('cache', { cacheTime: 0 }) },
        ),
      );

      const none = await probe('fresh');
      expect(none.http).toBe(200);
      expect(none.body.details.cache).toMatchObject({
        ...DEGRADED_CACHE,
        members: [],
        discovery: { healthy: false },
      });
      const failed = none.body.details.cache.discovery as Record<string, unknown>;
      expect(failed.lastError).toMatch(/memcached\.health\.local/);
      expect(Date.parse(String(failed.lastErrorAt))).not.toBeNaN();
      expect(failed.lastRefreshAt).toBeUndefined();
      expect(none.body.details.cache.message).toMatch(/no memcached members discovered/);

      dns.setA(name, [servers[0].host]);
      await app.get<MemcachedStore>(K8S_MEMCACHED_STORE).refresh();

      const found = await probe('fresh');
      expect(found.http).toBe(200);
      expect(found.body.details.cache).toMatchObject({
        status: 'up',
        members: [servers[0].id],
        answering: [servers[0].id],
        discovery: { healthy: true, lastError: failed.lastError },
      });
      const refreshed = found.body.details.cache.discovery as Record<string, unknown>;
      expect(Date.parse(String(refreshed.lastRefreshAt))).toBeGreaterThanOrEqual(
        Date.parse(String(failed.lastErrorAt)),
      );
    });
  });
});

const openssl = serviceAvailable(
  'openssl',
  findBinary('openssl') !== undefined,
  'apt-get install openssl',
);

describe.runIf(memcachedAvailable() && openssl)('MemcachedHealthIndicator over TLS', () => {
  const host = '127.0.11.5';
  let certificates: TestCertificates;
  beforeAll(() => {
    // A certificate for the member's IP, signed by a CA of the test's own.
    certificates = makeTestCertificates({ ips: [host] });
  });
  afterAll(async () => {
    await stopAllMemcached();
    certificates?.remove();
  });

  it('probes TLS members with the pool’s tls options', async () => {
    const { ca, certFile, keyFile } = certificates;
    const server = await startMemcached({
      host,
      args: ['-Z', '-o', `ssl_chain_cert=${certFile},ssl_key=${keyFile}`],
      tls: { ca },
    });
    const { probe } = await track(
      startApp([K8sModule.forRoot({ isGlobal: true, cache: { host: server.id, tls: { ca } } })], {
        cache: ({ cache }) => cache.isHealthy('cache', { cacheTime: 0 }),
      }),
    );
    const result = await probe('cache');
    expect(result.http).toBe(200);
    expect(result.body.details.cache).toMatchObject({ status: 'up', answering: [server.id] });
  });
});

describe('MigrationsHealthIndicator', () => {
  describe('on SQLite, through the app’s own TypeORM DataSource', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'k8s-health-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('is down naming the pending migrations, and up once they are applied', async () => {
      const { app, probe } = await track(
        startApp([TypeOrmModule.forRoot(databaseOptions(join(dir, 'app.sqlite')))], {
          migrations: ({ migrations }) => migrations.isHealthy('migrations', { cacheTime: 0 }),
        }),
      );
      const pending = await probe('migrations');
      expect(pending.http).toBe(503);
      expect(pending.body.details.migrations).toMatchObject({
        status: 'down',
        pending: ['CreateItems1732540000000', 'AddItemPrice1732540100000'],
      });
      expect(pending.body.details.migrations.message).toMatch(/2 pending migration/);

      await app.get(DataSource).runMigrations();

      const applied = await probe('migrations');
      expect(applied.http).toBe(200);
      expect(applied.body.details.migrations).toMatchObject({ status: 'up', pending: [] });
    });
  });

  describe.runIf(postgres)('on PostgreSQL', () => {
    let db: ThrowAwayDatabase;
    let proxy: TcpProxy;
    const dataSources: DataSource[] = [];

    // A database and proxy per test: one test migrates its database, another expects pending.
    beforeEach(async () => {
      db = await createPostgresDatabase();
      proxy = await startTcpProxy({ host: POSTGRES.host, port: POSTGRES.port });
      proxy.forward();
    });
    afterEach(async () => {
      await Promise.all(dataSources.filter((d) => d.isInitialized).map((d) => d.destroy()));
      dataSources.length = 0;
      await proxy?.close();
      await db?.drop();
    });

    it('pending → down, migrated → up, results cached and shared, database gone → down', async () => {
      const dataSource = new DataSource(databaseOptions(db.urlWithPort(proxy.port)));
      dataSources.push(dataSource);
      await dataSource.initialize();
      // Each check opens one query runner: count them to see which probes reach the database.
      let checks = 0;
      const createQueryRunner = dataSource.createQueryRunner.bind(dataSource);
      dataSource.createQueryRunner = (mode) => {
        checks++;
        return createQueryRunner(mode);
      };
      const { probe } = await track(
        startApp([], {
          fresh: ({ migrations }) =>
            migrations.isHealthy('migrations', { dataSources: dataSource, cacheTime: 0 }),
          cached: ({ migrations }) =>
            migrations.isHealthy('migrations-cached', {
              dataSources: [dataSource],
              cacheTime: 60_000,
            }),
        }),
      );

      const pending = await probe('fresh');
      expect(pending.http).toBe(503);
      expect(pending.body.details.migrations).toMatchObject({
        status: 'down',
        pending: ['CreateItems1732540000000', 'AddItemPrice1732540100000'],
        dataSources: [{ name: `postgres 127.0.0.1:${proxy.port}/${db.name}`, reachable: true }],
      });

      await dataSource.runMigrations();
      const applied = await probe('fresh');
      expect(applied.http).toBe(200);
      expect(applied.body.details.migrations).toMatchObject({ status: 'up', pending: [] });

      // Five probes at once share one check; the next ones within the cache time reuse it.
      checks = 0;
      const together = await Promise.all([1, 2, 3, 4, 5].map(() => probe('cached')));
      expect(together.map((p) => p.body.details['migrations-cached'].status)).toEqual(
        Array(5).fill('up'),
      );
      expect(checks).toBe(1);
      const again = await probe('cached');
      expect(again.body.details['migrations-cached']).toMatchObject({
        status: 'up',
        cachedResponse: true,
      });
      expect(checks).toBe(1);

      // The database goes away: a fresh check sees it, with no credential in the answer.
      expect(proxy.cut()).toBeGreaterThan(0);
      const gone = await probe('fresh');
      expect(gone.http).toBe(503);
      expect(gone.body.details.migrations.status).toBe('down');
      expect(gone.body.details.migrations.dataSources).toMatchObject([
        { reachable: false, problem: 'unreachable' },
      ]);
      expect(gone.text).not.toContain(db.password);
      expect(gone.text).not.toContain(encodeURIComponent(db.password));
      // The cached answer stays until it expires: probes do not hammer a database that struggles.
      expect((await probe('cached')).body.details['migrations-cached']).toMatchObject({
        status: 'up',
        cachedResponse: true,
      });
      proxy.forward();
    });

    it('is down when the database was never reachable (closed port)', async () => {
      const dataSource = new DataSource(databaseOptions(db.urlWithPort(await closedPort())));
      dataSources.push(dataSource);
      await expect(dataSource.initialize()).rejects.toThrow();
      const { probe } = await track(
        startApp([], {
          migrations: ({ migrations }) =>
            migrations.isHealthy('migrations', { dataSources: dataSource }),
        }),
      );
      const result = await probe('migrations');
      expect(result.http).toBe(503);
      expect(result.body.details.migrations).toMatchObject({
        status: 'down',
        dataSources: [{ reachable: false, problem: 'unreachable' }],
      });
      expect(result.text).not.toContain(db.password);
      expect(result.text).not.toContain(encodeURIComponent(db.password));
    });

    it('is down after its timeout while the check hangs, without starting another check', async () => {
      const dataSource = new DataSource(databaseOptions(db.urlWithPort(proxy.port)));
      dataSources.push(dataSource);
      await dataSource.initialize();
      await dataSource.runMigrations();
      let checks = 0;
      const createQueryRunner = dataSource.createQueryRunner.bind(dataSource);
      dataSource.createQueryRunner = (mode) => {
        checks++;
        return createQueryRunner(mode);
      };
      // Another session holds the migrations table: reading it waits, as on a busy database.
      await withPostgresAdmin(db.name, async (blocker) => {
        await blocker.query('BEGIN');
        await blocker.query('LOCK TABLE migrations IN ACCESS EXCLUSIVE MODE');
        const { probe } = await track(
          startApp([], {
            migrations: ({ migrations }) =>
              migrations.isHealthy('migrations', { dataSources: dataSource, timeout: 300 }),
          }),
        );
        const first = await probe('migrations');
        expect(first.http).toBe(503);
        expect(first.body.details.migrations.message).toBe(
          'the migration check took longer than 300 ms',
        );
        const second = await probe('migrations');
        expect(second.body.details.migrations.message).toMatch(/took longer than 300 ms/);
        expect(checks).toBe(1);
        await blocker.query('COMMIT');
        // Bounded: the check that waited ends once the lock is gone.
        const after = await waitForValue(
          'the migrations check up again',
          () => probe('migrations'),
          (result) => result.http === 200,
          5_000,
        );
        expect(after.body.details.migrations.status).toBe('up');
      });
    });
  });
});
