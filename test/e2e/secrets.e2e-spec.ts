import { generateKeyPairSync } from 'node:crypto';
import { Injectable, Module } from '@nestjs/common';
import type { INestApplication, LoggerService } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { DataSource } from 'typeorm';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CacheService, K8sModule } from '../../lib/index.js';
import type { K8sCacheOptions } from '../../lib/index.js';
import { MemcachedStore } from '../../lib/memcached/store/memcached.store.js';
import { MemcachedHealthIndicator, MigrationsHealthIndicator } from '../../lib/health/index.js';
import { K8sHealthModule } from '../../lib/health/index.js';
import {
  MARIADB,
  POSTGRES,
  mariadbReady,
  postgresReady,
  throwAwayName,
  withMariadbRoot,
  withPostgresAdmin,
} from '../support/databases.js';
import { freePort } from '../support/memcached.js';
import { commandScript, runSample, runScript, startSample } from '../support/run-command.js';
import type { CommandResult, RunningCommand } from '../support/run-command.js';
import { closedPort, startSilentServer, startTcpProxy } from '../support/tcp-proxy.js';

/**
 * Issue 6, item 7: no password given in `DATABASE_URL` or in options appears in any log line,
 * error message or health detail. Every path that prints or returns text runs here with a
 * distinctive password present; everything captured (children's stdout and stderr, thrown
 * messages, log lines, health results) is searched for it as each test ends, plain,
 * percent-encoded and percent-decoded.
 *
 * PostgreSQL here trusts 127.0.0.1 (pg_hba.conf), so its role's password is carried but not
 * checked; refused passwords are proven on MariaDB, whose user has a real one.
 * This file's loopback addresses: 127.0.12.60 (a closed memcached port).
 */

const postgres = await postgresReady();
const mariadb = await mariadbReady();

/** The PostgreSQL role's password, and the wrong one given to MariaDB. */
const SECRET = 'pw-SECRET-9f3k';
/** The MariaDB user's password, written percent-encoded in URLs. */
const ENCODED = 'p%40ss%3Aw0rd';
const DECODED = decodeURIComponent(ENCODED); // p@ss:w0rd
/** A passphrase given in the cache's `tls` options. */
const PASSPHRASE = 'tls-SECRET-7h2q';
/** Every form in which a secret must never show. */
const FORMS = [
  SECRET,
  DECODED,
  ENCODED,
  ENCODED.toLowerCase(),
  encodeURIComponent(SECRET),
  PASSPHRASE,
  // Inside JSON (health details, serialized errors) a password would be escaped like this.
  JSON.stringify(DECODED).slice(1, -1),
];

/** Everything captured, labelled by where it came from. */
const captured: Array<{ from: string; text: string }> = [];
const keep = (from: string, text: string | undefined): void => {
  captured.push({ from, text: text ?? '' });
};
const keepResult = (from: string, result: CommandResult): CommandResult => {
  keep(`${from} (stdout)`, result.stdout);
  keep(`${from} (stderr)`, result.stderr);
  return result;
};

/** Every form of a secret found in `texts`, with where it came from. */
const leaksIn = (texts: Array<{ from: string; text: string }>): string[] =>
  texts.flatMap(({ from, text }) =>
    FORMS.filter((form) => text.includes(form)).map(
      (form) => `${from}: ${form} in ${JSON.stringify(text.slice(0, 400))}`,
    ),
  );

/** A LoggerService that keeps every line (message, stack, context) it is given. */
function capturingLogger(from: string): LoggerService {
  const line =
    (level: string) =>
    (...parts: unknown[]): void =>
      keep(`${from} ${level}`, parts.map((part) => String(part)).join(' | '));
  return {
    log: line('log'),
    warn: line('warn'),
    error: line('error'),
    debug: line('debug'),
    verbose: line('verbose'),
    fatal: line('fatal'),
  };
}

/** The message (and cause chain) of what `fn` throws; fails the test when nothing is thrown. */
async function thrown(from: string, fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (error) {
    let text = '';
    for (let e: unknown = error; e; e = (e as { cause?: unknown }).cause) {
      text += `${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e)}\n`;
    }
    keep(from, text);
    return text;
  }
  throw new Error(`${from}: nothing was thrown`);
}

/** Start the sample app, wait for `text` (or the process to end), then stop it; keep its output. */
async function appUntil(
  from: string,
  env: Record<string, string>,
  text: string,
  whileUp?: () => Promise<void>,
): Promise<CommandResult> {
  const app: RunningCommand = startSample([], {
    env: { CACHE_HOST: '', ...env },
    timeoutMs: 30_000,
  });
  try {
    await Promise.race([app.waitForOutput(text), app.result]);
    await whileUp?.();
  } finally {
    app.child.kill('SIGTERM');
  }
  return keepResult(from, await app.result);
}

describe.skipIf(!postgres || !mariadb)('no secret in any output', () => {
  const pgRole = throwAwayName('k8s_secret');
  const pgDb = throwAwayName('k8s_secret');
  const myUser = throwAwayName('k8s_secret');
  const myDb = throwAwayName('k8s_secret');
  const pgUrl = (port = POSTGRES.port, db = pgDb): string =>
    `postgres://${pgRole}:${SECRET}@${POSTGRES.host}:${port}/${db}`;
  const myUrl = (password = ENCODED, port = MARIADB.port): string =>
    `mariadb://${myUser}:${password}@${MARIADB.host}:${port}/${myDb}`;

  beforeAll(async () => {
    await withPostgresAdmin('postgres', async (admin) => {
      await admin.query(`CREATE ROLE ${pgRole} LOGIN PASSWORD '${SECRET}'`);
      await admin.query(`CREATE DATABASE ${pgDb} OWNER ${pgRole}`);
    });
    await withMariadbRoot(undefined, async (root) => {
      await root.query(`CREATE DATABASE ${myDb}`);
      await root.query(`CREATE USER '${myUser}'@'%' IDENTIFIED BY '${DECODED}'`);
      await root.query(`GRANT ALL ON ${myDb}.* TO '${myUser}'@'%'`);
    });
  });

  afterAll(async () => {
    await withPostgresAdmin('postgres', async (admin) => {
      await admin.query(`DROP DATABASE IF EXISTS ${pgDb} WITH (FORCE)`);
      await admin.query(`DROP ROLE IF EXISTS ${pgRole}`);
    });
    await withMariadbRoot(undefined, async (root) => {
      await root.query(`DROP DATABASE IF EXISTS ${myDb}`);
      await root.query(`DROP USER IF EXISTS '${myUser}'@'%'`);
    });
  });

  it('the commands, on every outcome, with the password in DATABASE_URL', async () => {
    const sample = async (from: string, args: string[], url: string) =>
      keepResult(from, await runSample(args, { env: { DATABASE_URL: url } }));
    const silent = await startSilentServer();
    const unreachable = await closedPort();
    try {
      // PostgreSQL: pending (at once, and waiting until the timeout), unreachable, silent,
      // unknown database, a URL that cannot be decoded.
      const [pending, waiting, refused, hung, unknown, undecodable] = await Promise.all([
        sample('pg checkmigrations pending', ['checkmigrations'], pgUrl()),
        sample(
          'pg checkmigrations --wait pending',
          ['checkmigrations', '--wait', '--timeout', '2', '--interval', '0.5'],
          pgUrl(),
        ),
        sample(
          'pg checkmigrations --wait unreachable',
          ['checkmigrations', '--wait', '--timeout', '2'],
          pgUrl(unreachable),
        ),
        sample(
          'pg checkmigrations --wait silent',
          ['checkmigrations', '--wait', '--timeout', '2'],
          pgUrl(silent.port),
        ),
        sample('pg checkmigrations unknown db', ['checkmigrations'], pgUrl(POSTGRES.port, 'nope')),
        sample(
          'pg checkmigrations bad URL',
          ['checkmigrations'],
          pgUrl().replace(SECRET, `${SECRET}%zz`),
        ),
      ]);
      expect([pending, waiting, refused, hung, unknown, undecodable].map((r) => r.code)).toEqual([
        1, 1, 1, 1, 2, 2,
      ]);
      expect(unknown.stderr).toContain('nope');

      // MariaDB: a refused password (check and migrate), then the right one, percent-encoded.
      const [denied, deniedMigrate, myPending] = await Promise.all([
        sample('mariadb checkmigrations wrong password', ['checkmigrations'], myUrl(SECRET)),
        sample('mariadb migrate wrong password', ['migrate'], myUrl(SECRET)),
        sample('mariadb checkmigrations pending', ['checkmigrations'], myUrl()),
      ]);
      expect([denied.code, deniedMigrate.code, myPending.code]).toEqual([2, 2, 1]);
      expect(denied.stderr).toMatch(/^Access denied on /);

      // migrate, then the check passes; a migration that throws with the URL and password in
      // its message (TypeORM logs such failures unmasked by default).
      const migrated = await sample('pg migrate', ['migrate'], pgUrl());
      expect(migrated.code).toBe(0);
      const ready = await sample('pg checkmigrations ok', ['checkmigrations'], pgUrl());
      expect(ready.stdout).toBe('Migrations complete.\n');
      const failed = keepResult(
        'pg migrate failure',
        await runScript(
          commandScript({
            prelude: `
class Boom1700000000001 {
  async up() {
    throw new Error('cannot use ' + process.env.DATABASE_URL + ' with ' + decodeURIComponent(process.env.PW));
  }
  async down() {}
}`,
            dataSources: `{ type: 'postgres', url: process.env.DATABASE_URL, migrationsTableName: 'secret_migrations', migrations: [Boom1700000000001] }`,
          }),
          ['migrate'],
          // This server trusts 127.0.0.1: the percent-encoded password is carried, not checked.
          { env: { DATABASE_URL: pgUrl().replace(SECRET, ENCODED), PW: ENCODED } },
        ),
      );
      expect(failed.code).toBe(1);
      expect(failed.stderr).toMatch(/^Migration Boom1700000000001 failed on .*: cannot use /);
    } finally {
      await silent.close();
    }
  }, 60_000);

  it('the app booting with bad cache options, a bad or unreachable DATABASE_URL, and its health endpoints', async () => {
    // Bad cache options next to a database URL with a password: K8sOptionsError at boot.
    const badPort = await appUntil(
      'app bad CACHE_PORT',
      { CACHE_HOST: 'cache.local', CACHE_PORT: 'abc', DATABASE_URL: pgUrl() },
      'cache.port',
    );
    expect(badPort.stdout + badPort.stderr).toMatch(/cache\.port/);
    // Credentials written into the cache host: refused without being echoed.
    const credentialsInHost = await appUntil(
      'app credentials in CACHE_HOST',
      { CACHE_HOST: `memcached://admin:${SECRET}@cache.local:11211`, DATABASE_URL: pgUrl() },
      'cache host',
    );
    expect(credentialsInHost.stdout + credentialsInHost.stderr).toMatch(/contains "@"/);
    // A scheme the sample does not know, and an unreachable server (TypeORM's retry log).
    const badScheme = await appUntil(
      'app bad DATABASE_URL scheme',
      { DATABASE_URL: pgUrl().replace('postgres:', 'postgress:') },
      'unsupported scheme',
    );
    expect(badScheme.stdout + badScheme.stderr).toMatch(/unsupported scheme/);
    const unreachable = await appUntil(
      'app unreachable database',
      { DATABASE_URL: pgUrl(await closedPort()) },
      'Unable to connect to the database',
    );
    expect(unreachable.stdout + unreachable.stderr).toMatch(/Unable to connect to the database/);

    // Up, on MariaDB with pending migrations: readiness is down, naming them.
    const port = await freePort('127.0.0.1');
    const bodies: string[] = [];
    await appUntil(
      'app health',
      { DATABASE_URL: myUrl(), PORT: String(port) },
      'Listening on port',
      async () => {
        for (const path of ['/health/ready', '/health/live']) {
          const response = await fetch(`http://127.0.0.1:${port}${path}`);
          bodies.push(await response.text());
        }
      },
    );
    for (const body of bodies) keep('app health body', body);
    expect(bodies[0]).toMatch(/CreateItems1732540000000/);
  }, 60_000);

  it('options errors, log lines and health details in process', async () => {
    // Credentials in the cache host, plain or as a URL with a percent-encoded password.
    for (const host of [
      `admin:${SECRET}@cache.local`,
      `memcached://admin:${ENCODED}@cache.local:11211`,
      `cache-0.local,admin:${DECODED}@cache-1.local`,
    ]) {
      const message = await thrown(`MemcachedStore host ${host.slice(0, 12)}…`, () =>
        new MemcachedStore({ host, refreshInterval: 0 }).disconnect(),
      );
      expect(message).toMatch(/K8sOptionsError: Invalid cache host: item \d contains "@"/);
    }
    // An encrypted key and a wrong passphrase in the TLS options.
    const { privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: {
        type: 'pkcs8',
        format: 'pem',
        cipher: 'aes-256-cbc',
        passphrase: 'the-right-one',
      },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    const badTls = await thrown('MemcachedStore tls wrong passphrase', () =>
      new MemcachedStore({
        host: '127.0.12.60',
        tls: { key: privateKey, passphrase: PASSPHRASE },
      }).disconnect(),
    );
    expect(badTls).toMatch(/cache\.tls is not usable/);

    // A running app: the cache (TLS options with a passphrase, a member that refuses) and the
    // migration check of data sources whose connections fail or whose password is refused.
    const memcachedPort = await freePort('127.0.12.60');
    const pgProxy = await startTcpProxy({ host: POSTGRES.host, port: POSTGRES.port });
    const myProxy = await startTcpProxy({ host: MARIADB.host, port: MARIADB.port });
    pgProxy.forward();
    myProxy.forward();
    const migrations = [
      class CreateThings1700000000001 {
        async up(): Promise<void> {}
        async down(): Promise<void> {}
      },
    ];
    const sources = [
      new DataSource({ type: 'postgres', url: pgUrl(pgProxy.port), migrations }),
      new DataSource({
        type: 'mariadb',
        host: MARIADB.host,
        port: myProxy.port,
        username: myUser,
        password: DECODED,
        database: myDb,
        migrations,
      }),
      new DataSource({ type: 'postgres', url: pgUrl(), migrations }),
    ];
    await Promise.all(sources.map((source) => source.initialize()));

    @Injectable()
    class Probe {
      constructor(
        readonly cache: CacheService,
        readonly memcached: MemcachedHealthIndicator,
        readonly migrations: MigrationsHealthIndicator,
      ) {}
    }
    @Module({ imports: [K8sHealthModule.forRoot()], providers: [Probe] })
    class ProbeModule {}
    const cache: K8sCacheOptions = {
      host: `127.0.12.60:${memcachedPort}`,
      tls: { passphrase: PASSPHRASE, rejectUnauthorized: false },
      connectTimeout: 300,
      commandTimeout: 300,
    };
    const moduleRef = await Test.createTestingModule({
      imports: [K8sModule.forRoot({ isGlobal: true, cache }), ProbeModule],
    }).compile();
    const app: INestApplication = moduleRef.createNestApplication({
      logger: capturingLogger('app'),
    });
    await app.init();
    try {
      const probe = app.get(Probe);
      await probe.cache.set('k', 'v');
      keep('cache get', String(await probe.cache.get('k')));
      keep('cache stats', JSON.stringify(probe.cache.stats()));
      keep(
        'memcached health',
        JSON.stringify(await probe.memcached.isHealthy('cache', { cacheTime: 0 })),
      );
      const healthy = JSON.stringify(
        await probe.migrations.isHealthy('migrations', { dataSources: sources, cacheTime: 0 }),
      );
      keep('migrations health (pending)', healthy);
      expect(healthy).toMatch(/CreateThings1700000000001/);
      // The servers go away under the initialized data sources.
      pgProxy.cut();
      myProxy.cut();
      const broken = JSON.stringify(
        await probe.migrations.isHealthy('migrations', { dataSources: sources, cacheTime: 0 }),
      );
      keep('migrations health (connections cut)', broken);
      expect(broken).toMatch(/unreachable|ECONNREFUSED|terminated|closed/i);
    } finally {
      await app.close();
      await Promise.all(sources.map((source) => source.destroy().catch(() => undefined)));
      await pgProxy.close();
      await myProxy.close();
    }
  }, 60_000);

  // Each test's own captures are searched as it ends, so no test depends on another having run.
  beforeEach(() => {
    captured.length = 0;
  });
  afterEach((context) => {
    const total = captured.reduce((n, { text }) => n + text.length, 0);
    console.log(
      `secrets (${context.task.name}): ${captured.length} captured texts (${total} characters) ` +
        `searched for ${FORMS.length} forms of 3 secrets`,
    );
    // Control: the search finds a secret planted in any of its forms.
    for (const form of FORMS)
      expect(leaksIn([{ from: 'control', text: `x${form}y` }]).length).toBeGreaterThan(0);
    expect(captured.length).toBeGreaterThan(0);
    expect(leaksIn(captured)).toEqual([]);
  });
});
