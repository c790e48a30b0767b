import { describe, expect, it } from 'vitest';
import {
  MARIADB,
  createMariadbDatabase,
  mariadbReady,
  throwAwayName,
} from '../support/databases.js';
import type { ThrowAwayDatabase } from '../support/databases.js';
import {
  commonCommandTests,
  freshDatabasePerTest,
  concurrentMigrateTest,
  failedMigrationTest,
  passwordNeverPrintedTest,
  run,
  serverCommandTests,
} from '../support/migration-commands.suite.js';
import { commandScript, lines, runScript } from '../support/run-command.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

const available = await mariadbReady();

const MARIADB_URL = "type: 'mariadb', url: process.env.DATABASE_URL";

describe.skipIf(!available)('checkmigrations and migrate on MariaDB', () => {
  const context = freshDatabasePerTest(createMariadbDatabase);
  const db = (): ThrowAwayDatabase => context.db();

  commonCommandTests(context);

  it('reads a mariadb:// URL with an IPv6 host (here a proxy on [::1] to the server)', async () => {
    const proxy = await startTcpProxy(
      { host: MARIADB.host, port: MARIADB.port },
      { listenHost: '::1' },
    );
    proxy.forward();
    try {
      const url = db().url.replace(`@${MARIADB.host}:${MARIADB.port}/`, `@[::1]:${proxy.port}/`);
      expect((await run(context, ['migrate'], url)).code).toBe(0);
      const result = await run(context, ['checkmigrations'], url);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toBe('Migrations complete.\n');
    } finally {
      await proxy.close();
    }
  });

  it('?ssl=true asks for TLS (this server has none: exit 2 at once, even with --wait)', async () => {
    const result = await run(
      context,
      ['checkmigrations', '--wait', '--timeout', '30'],
      `${db().url}?ssl=true`,
    );
    expect(result.code).toBe(2);
    expect(lines(result.stderr)).toEqual([
      expect.stringMatching(
        /^Configuration error on mariadb .*does not support secure connection.*waiting will not help\.$/,
      ),
    ]);
    const unknown = await run(context, ['checkmigrations'], `${db().url}?sslmode=on`);
    expect(unknown.code).toBe(2);
    expect(lines(unknown.stderr)).toEqual([
      expect.stringMatching(
        /^checkmigrations: configuration error: DATABASE_URL has the query parameter "sslmode"/,
      ),
    ]);
  });

  it('a password written unencoded is exit 2 naming DATABASE_URL, without the password', async () => {
    for (const password of ['12/ab', db().password]) {
      const url = `mariadb://${db().name}:${password}@${MARIADB.host}:${MARIADB.port}/${db().name}`;
      const result = await run(context, ['checkmigrations', '--wait', '--timeout', '30'], url);
      expect(result.code).toBe(2);
      expect(lines(result.stderr)).toEqual([
        expect.stringMatching(
          /^checkmigrations: configuration error: DATABASE_URL is not a valid mariadb:\/\/ URL /,
        ),
      ]);
      expect(result.stderr).not.toContain(password);
    }
  });

  it('a user whose password is its name is named as it is in "access denied"', async () => {
    const user = throwAwayName('same');
    const result = await run(
      context,
      ['checkmigrations'],
      `mariadb://${user}:${user}@${MARIADB.host}:${MARIADB.port}/${db().name}`,
    );
    expect(result.code).toBe(2);
    expect(lines(result.stderr)).toEqual([
      expect.stringMatching(new RegExp(`^Access denied on mariadb .*for user '${user}'@`)),
    ]);
  });

  it('migrate as a user who may only read is exit 2 at once (access denied), not a retry', async () => {
    const fresh = await createMariadbDatabase();
    const reader = throwAwayName('reader');
    try {
      await fresh.query(`CREATE USER '${reader}'@'%' IDENTIFIED BY 'reader-pass-1'`);
      await fresh.query(`GRANT SELECT ON ${fresh.name}.* TO '${reader}'@'%'`);
      const url = `mariadb://${reader}:reader-pass-1@${MARIADB.host}:${MARIADB.port}/${fresh.name}`;
      const result = await run(context, ['migrate'], url);
      expect(result.code).toBe(2);
      expect(lines(result.stderr)).toEqual([
        expect.stringMatching(
          /^Access denied on mariadb .*ER_TABLEACCESS_DENIED_ERROR.*waiting will not help\.$/,
        ),
      ]);
      expect(await fresh.hasTable('migrations')).toBe(false);
    } finally {
      await fresh.query(`DROP USER IF EXISTS '${reader}'@'%'`);
      await fresh.drop();
    }
  });
  serverCommandTests(
    context,
    {
      badCredentials: () => db().url.replace(encodeURIComponent(db().password), 'wrong-password'),
      // As root: MariaDB answers a restricted user's unknown database with "access denied".
      unknownDatabase: () =>
        `mariadb://${MARIADB.adminUser}@${MARIADB.host}:${MARIADB.port}/${throwAwayName('missing')}`,
    },
    MARIADB.port,
  );

  it('a server without TLS asked for TLS gives exit 2 at once, even with --wait', async () => {
    const result = await runScript(
      commandScript({
        prelude: 'class A1700000000001 { async up() {} async down() {} }',
        dataSources: `{ ${MARIADB_URL}, ssl: { rejectUnauthorized: true }, migrations: [A1700000000001] }`,
      }),
      ['checkmigrations', '--wait', '--timeout', '30'],
      { env: { DATABASE_URL: db().url } },
    );
    context.outputs.push(result.stdout, result.stderr);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(lines(result.stderr)).toEqual([
      expect.stringMatching(
        /^Configuration error on mariadb .*does not support secure connection.*waiting will not help\.$/,
      ),
    ]);
  });

  concurrentMigrateTest(context, createMariadbDatabase);
  // MariaDB commits DDL at once, so the table the first migration made (and its row) stay.
  failedMigrationTest(context, createMariadbDatabase, MARIADB_URL, { mode: 'all', kept: true });
  passwordNeverPrintedTest(context);
});
