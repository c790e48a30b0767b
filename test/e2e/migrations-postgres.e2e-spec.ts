import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import {
  POSTGRES,
  createPostgresDatabase,
  postgresReady,
  throwAwayName,
  withPostgresAdmin,
} from '../support/databases.js';
import type { ThrowAwayDatabase } from '../support/databases.js';
import {
  commonCommandTests,
  freshDatabasePerTest,
  concurrentMigrateTest,
  failedMigrationTest,
  migrationRows,
  passwordNeverPrintedTest,
  run,
  serverCommandTests,
} from '../support/migration-commands.suite.js';
import { commandScript, lines, runScript, startScript } from '../support/run-command.js';
import { closedPort, startSilentServer } from '../support/tcp-proxy.js';
import { scaled } from '../support/timing.js';

const available = await postgresReady();

const POSTGRES_URL = "type: 'postgres', url: process.env.DATABASE_URL";

describe.skipIf(!available)('checkmigrations and migrate on PostgreSQL', () => {
  const context = freshDatabasePerTest(createPostgresDatabase);
  const db = (): ThrowAwayDatabase => context.db();

  commonCommandTests(context);
  serverCommandTests(
    context,
    {
      // This server trusts 127.0.0.1 (pg_hba.conf), so a wrong password is accepted; an unknown
      // role is the refusal it can produce (SQLSTATE 28000). MariaDB tests a wrong password.
      badCredentials: () =>
        db().url.replace('postgres://postgres:', `postgres://${throwAwayName('nobody')}:`),
      unknownDatabase: () => db().url.replace(/\/[^/]+$/, `/${throwAwayName('missing')}`),
    },
    POSTGRES.port,
  );

  it('a role without CONNECT on the database (42501) gives exit 2 at once, even with --wait', async () => {
    const role = throwAwayName('noconnect');
    await withPostgresAdmin('postgres', async (admin) => {
      try {
        await admin.query(`CREATE ROLE ${role} LOGIN`);
        await admin.query(`REVOKE CONNECT ON DATABASE ${db().name} FROM PUBLIC`);
        const url = db().url.replace('postgres://postgres:', `postgres://${role}:`);
        const result = await run(context, ['checkmigrations', '--wait', '--timeout', '30'], url);
        expect(result.code).toBe(2);
        expect(result.stdout).toBe('');
        expect(lines(result.stderr)).toEqual([
          expect.stringMatching(/^Access denied on postgres .*(42501).*waiting will not help\.$/),
        ]);
      } finally {
        await admin.query(`GRANT CONNECT ON DATABASE ${db().name} TO PUBLIC`);
        await admin.query(`DROP ROLE IF EXISTS ${role}`);
      }
    });
  });

  it('a server without TLS asked for TLS gives exit 2 at once, even with --wait', async () => {
    const result = await run(
      context,
      ['checkmigrations', '--wait', '--timeout', '30'],
      `${db().url}?sslmode=verify-full`,
    );
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(lines(result.stderr)).toEqual([
      expect.stringMatching(
        /^Configuration error on .*does not support SSL.*waiting will not help\.$/,
      ),
    ]);
  });

  it('migrate gives up waiting for a held lock after --timeout with exit 1, and exits 130 on SIGINT', async () => {
    const release = await db().holdMigrationLock();
    try {
      const timedOut = await run(context, ['migrate', '--timeout', '1']);
      expect(timedOut.code).toBe(1);
      expect(lines(timedOut.stdout)).toEqual([
        expect.stringMatching(/^Waiting for the migration lock on postgres /),
      ]);
      expect(lines(timedOut.stderr)).toEqual([
        expect.stringMatching(/^Timed out after 1 s waiting for the migration lock/),
      ]);

      const command = startScript(
        commandScript({
          prelude: 'class A1700000000001 { async up() {} async down() {} }',
          dataSources: `{ ${POSTGRES_URL}, migrations: [A1700000000001] }`,
        }),
        ['migrate', '--timeout', '60'],
        { env: { DATABASE_URL: db().url } },
      );
      await command.waitForOutput('Waiting for the migration lock on ');
      const signalled = Date.now();
      command.child.kill('SIGINT');
      const interrupted = await command.result;
      context.outputs.push(interrupted.stdout, interrupted.stderr);
      expect(Date.now() - signalled).toBeLessThan(scaled(3_000));
      expect(interrupted.code).toBe(130);
      expect(lines(interrupted.stderr)).toEqual([
        'Interrupted by SIGINT while waiting for the migration lock',
      ]);
    } finally {
      await release();
    }
  });

  describe('a server that accepts connections and never answers', () => {
    const options = (port: number): string =>
      // The driver's own connect timeout is long: the command's per-attempt limit must act.
      `{ type: 'postgres', host: '127.0.0.1', port: ${port}, username: 'postgres', database: 'app', connectTimeoutMS: 60000, migrations: [A1700000000001] }`;
    const prelude = 'class A1700000000001 { async up() {} async down() {} }';

    it('checkmigrations --wait reports "no answer" once per attempt and times out with exit 1', async () => {
      const silent = await startSilentServer();
      try {
        const result = await runScript(
          commandScript({ prelude, dataSources: options(silent.port), connectTimeout: 1_000 }),
          ['checkmigrations', '--wait', '--timeout', '4', '--interval', '0.2'],
        );
        expect(result.code).toBe(1);
        const progress = lines(result.stdout);
        progress.forEach((line, i) =>
          expect(line).toMatch(
            new RegExp(
              `^Waiting \\(attempt ${i + 1}, [\\d.]+ s elapsed\\): database unreachable: postgres 127\\.0\\.0\\.1:${silent.port}/app: no answer within [\\d.]+ s$`,
            ),
          ),
        );
        // Whole attempts end by the 1 s limit (the last one may be cut to what --timeout leaves).
        expect(
          progress.filter((line) => line.endsWith('no answer within 1 s')).length,
        ).toBeGreaterThanOrEqual(2);
        expect(lines(result.stderr)).toEqual([
          expect.stringMatching(
            /^Timed out after 4 s, not ready: database unreachable: postgres .*: no answer within [\d.]+ s$/,
          ),
        ]);
        expect(silent.connections()).toBeGreaterThanOrEqual(1);
      } finally {
        await silent.close();
      }
    });

    it('with several sources: a timeout names every one not ready, a final problem ends the wait at once, and neither waits on the stuck connect', async () => {
      const silent = await startSilentServer();
      try {
        const both = (url: string): string =>
          commandScript({
            prelude,
            dataSources: `[${options(silent.port)}, { type: 'postgres', url: '${url}', migrations: [A1700000000001] }]`,
            connectTimeout: 5_000,
          });
        // What start-up, loading TypeORM and one refused connect take.
        const baseline = (
          await runScript(
            commandScript({
              prelude,
              dataSources: `{ type: 'postgres', host: '127.0.0.1', port: ${await closedPort()}, migrations: [A1700000000001] }`,
            }),
            ['checkmigrations'],
          )
        ).durationMs;

        const timedOut = await runScript(both(db().url), [
          'checkmigrations',
          '--wait',
          '--timeout',
          '2',
        ]);
        context.outputs.push(timedOut.stdout, timedOut.stderr);
        expect(timedOut.code).toBe(1);
        expect(lines(timedOut.stderr)).toEqual([
          expect.stringMatching(
            new RegExp(
              `^Timed out after 2 s, not ready: database unreachable: postgres 127\\.0\\.0\\.1:${silent.port}/app: no answer within [\\d.]+ s; 1 pending migration on postgres 127\\.0\\.0\\.1:5432/${db().name}: A1700000000001$`,
            ),
          ),
        ]);
        // Not 2 s more on closing a connection that is still being set up.
        expect(timedOut.durationMs - baseline).toBeLessThan(2_000 + 1_200);

        const missing = db().url.replace(/\/[^/]+$/, `/${throwAwayName('missing')}`);
        const final = await runScript(both(missing), [
          'checkmigrations',
          '--wait',
          '--timeout',
          '30',
        ]);
        context.outputs.push(final.stdout, final.stderr);
        expect(final.code).toBe(2);
        expect(final.stdout).toBe('');
        expect(lines(final.stderr)).toEqual([
          expect.stringMatching(/^Unknown database on postgres .*waiting will not help\.$/),
        ]);
        // Not after the silent source's 5 s attempt.
        expect(final.durationMs - baseline).toBeLessThan(2_500);
      } finally {
        await silent.close();
      }
    });

    it('migrate exits 143 at once on SIGTERM while connecting', async () => {
      const silent = await startSilentServer();
      try {
        const command = startScript(
          commandScript({ prelude, dataSources: options(silent.port), connectTimeout: 30_000 }),
          ['migrate'],
        );
        await silent.waitForConnections(1);
        const signalled = Date.now();
        command.child.kill('SIGTERM');
        const result = await command.result;
        expect(Date.now() - signalled).toBeLessThan(scaled(3_000));
        expect(result.code).toBe(143);
        expect(lines(result.stderr)).toEqual(['Interrupted by SIGTERM while connecting']);
      } finally {
        await silent.close();
      }
    });
  });

  it('a check installs no extension: uuid and citext columns leave pg_extension as it was', async () => {
    const fresh = await createPostgresDatabase();
    try {
      const extensions = async (): Promise<string[]> =>
        (
          await fresh.query<{ extname: string }>(
            'SELECT extname FROM pg_extension ORDER BY extname',
          )
        ).map((row) => row.extname);
      const before = await extensions();
      expect(before).not.toContain('uuid-ossp');
      const result = await runScript(
        commandScript({
          prelude: `
const Thing = new EntitySchema({
  name: 'Thing',
  tableName: 'thing',
  columns: { id: { type: 'uuid', primary: true, generated: 'uuid' }, email: { type: 'citext' } },
});
class CreateThing1700000000001 { async up() {} async down() {} }`,
          dataSources: `{ ${POSTGRES_URL}, uuidExtension: 'uuid-ossp', entities: [Thing], migrations: [CreateThing1700000000001] }`,
        }),
        ['checkmigrations'],
        { env: { DATABASE_URL: fresh.url } },
      );
      expect(result.code).toBe(1);
      expect(lines(result.stderr)).toEqual([
        expect.stringMatching(
          /^Not ready: 1 pending migration on postgres .*: CreateThing1700000000001$/,
        ),
      ]);
      expect(await extensions()).toEqual(before);
      expect(await fresh.hasTable('migrations')).toBe(false);
    } finally {
      await fresh.drop();
    }
  });

  it('checks every data source: one ready, one with pending migrations', async () => {
    const [main, other] = await Promise.all([createPostgresDatabase(), createPostgresDatabase()]);
    try {
      const script = commandScript({
        prelude: 'class A1700000000001 { async up() {} async down() {} }',
        dataSources: `[
          { ${POSTGRES_URL}, name: 'main', migrations: [A1700000000001] },
          { type: 'postgres', url: process.env.OTHER_URL, name: 'other', migrations: [A1700000000001] },
        ]`,
      });
      const env = { DATABASE_URL: main.url, OTHER_URL: other.url };
      // Applies on both; then make the second pending again by forgetting its migration.
      const migrate = await runScript(script, ['migrate'], { env });
      expect(migrate.code).toBe(0);
      expect(lines(migrate.stdout)).toHaveLength(2);
      await other.query('DELETE FROM migrations');
      const check = await runScript(script, ['checkmigrations'], { env });
      context.outputs.push(migrate.stdout, migrate.stderr, check.stdout, check.stderr);
      expect(check.code).toBe(1);
      expect(lines(check.stderr)).toEqual([
        `Not ready: 1 pending migration on postgres 127.0.0.1:5432/${other.name}: A1700000000001`,
      ]);
    } finally {
      await Promise.all([main.drop(), other.drop()]);
    }
  });

  it('prints names as they are: a password equal to the user name, or a short one, is not masked in text', async () => {
    const role = throwAwayName('same');
    const same = await run(
      context,
      ['checkmigrations'],
      db().url.replace(/^postgres:\/\/[^@]+@/, `postgres://${role}:${role}@`),
    );
    expect(same.code).toBe(2);
    expect(lines(same.stderr)).toEqual([expect.stringContaining(`role "${role}" does not exist`)]);
    const missing = throwAwayName('missing');
    const short = await run(
      context,
      ['checkmigrations'],
      `postgres://postgres:i@${POSTGRES.host}:${POSTGRES.port}/${missing}`,
    );
    expect(short.code).toBe(2);
    expect(lines(short.stderr)).toEqual([
      expect.stringContaining(`database "${missing}" does not exist`),
    ]);
  });

  it('a TLS file that cannot be read is exit 2 at once, even with --wait', async () => {
    const result = await run(
      context,
      ['checkmigrations', '--wait', '--timeout', '30'],
      `${db().url}?sslcert=/nonexistent-k8s-mig/client.crt`,
    );
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(lines(result.stderr)).toEqual([
      expect.stringMatching(
        /^Configuration error on postgres .*ENOENT.*client\.crt.*waiting will not help\.$/,
      ),
    ]);
  });

  it("pg's many-line TLS warning is printed as one line", async () => {
    const result = await run(
      context,
      ['checkmigrations', '--wait', '--timeout', '30'],
      `${db().url}?sslmode=require`,
    );
    expect(result.code).toBe(2);
    expect(lines(result.stderr)).toEqual([
      expect.stringMatching(/^Warning: SECURITY WARNING: .*sslmode/),
      expect.stringMatching(/^Configuration error on postgres .*does not support SSL/),
    ]);
  });

  it('a bad percent sequence in DATABASE_URL is exit 2 naming DATABASE_URL, without the password', async () => {
    const url = `postgres://postgres:pw%zz-${throwAwayName()}@${POSTGRES.host}:${POSTGRES.port}/${db().name}`;
    const result = await run(context, ['checkmigrations', '--wait'], url);
    expect(result.code).toBe(2);
    expect(lines(result.stderr)).toEqual([
      expect.stringMatching(
        /^checkmigrations: configuration error: DATABASE_URL is not a valid postgres:\/\/ URL \(bad percent-encoding in the password\)/,
      ),
    ]);
    expect(result.stderr).not.toContain('pw%zz');
  });

  it('when the migrating session is killed, tells which earlier migrations are still applied', async () => {
    const fresh = await createPostgresDatabase();
    try {
      const command = startScript(
        commandScript({
          prelude: `
class First1700000000001 { async up(q) { await q.query('CREATE TABLE first_table (id int)'); } async down() {} }
class Sleepy1700000000002 {
  async up(q) { console.log('sleepy started'); await q.query('SELECT pg_sleep(30)'); }
  async down() {}
}`,
          dataSources: `{ ${POSTGRES_URL}, migrationsTransactionMode: 'each', migrations: [First1700000000001, Sleepy1700000000002] }`,
        }),
        ['migrate'],
        { env: { DATABASE_URL: fresh.url } },
      );
      await command.waitForOutput('sleepy started');
      let killed = 0;
      for (let tries = 0; tries < 50 && killed === 0; tries++) {
        killed = (
          await fresh.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${fresh.name}' AND query LIKE 'SELECT pg_sleep(30)%'`,
          )
        ).length;
        if (killed === 0) await delay(100);
      }
      expect(killed).toBe(1);
      const result = await command.result;
      context.outputs.push(result.stdout, result.stderr);
      expect(result.code).toBe(1);
      expect(lines(result.stderr)).toEqual([
        expect.stringMatching(
          /^Migration Sleepy1700000000002 failed on postgres .*\. Applied before it in this run, and still applied: First1700000000001\.$/,
        ),
      ]);
      expect(await migrationRows(fresh)).toEqual(['First1700000000001']);
    } finally {
      await fresh.drop();
    }
  });

  it('a failed unlock after the migrations are applied still reports them, exit 0', async () => {
    const fresh = await createPostgresDatabase();
    try {
      const result = await runScript(
        commandScript({
          prelude: `
class Sabotage1700000000001 {
  async up(q) {
    const query = q.query.bind(q);
    // The lock is released on this same session: make that one query fail.
    q.query = (sql, ...rest) =>
      /pg_advisory_unlock/.test(sql) ? Promise.reject(new Error('unlock failed')) : query(sql, ...rest);
    await query('CREATE TABLE sabotage (id int)');
  }
  async down() {}
}`,
          dataSources: `{ ${POSTGRES_URL}, migrations: [Sabotage1700000000001] }`,
        }),
        ['migrate'],
        { env: { DATABASE_URL: fresh.url } },
      );
      context.outputs.push(result.stdout, result.stderr);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(lines(result.stdout)).toEqual([
        `Applied 1 migration on postgres 127.0.0.1:5432/${fresh.name}: Sabotage1700000000001.`,
      ]);
      expect(await migrationRows(fresh)).toEqual(['Sabotage1700000000001']);
    } finally {
      await fresh.drop();
    }
  });

  concurrentMigrateTest(context, createPostgresDatabase);
  failedMigrationTest(context, createPostgresDatabase, POSTGRES_URL, { mode: 'all', kept: false });
  failedMigrationTest(context, createPostgresDatabase, POSTGRES_URL, { mode: 'each', kept: true });
  passwordNeverPrintedTest(context);
});
