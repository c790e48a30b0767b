import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSqliteDatabase } from '../support/databases.js';
import type { ThrowAwayDatabase } from '../support/databases.js';
import {
  commonCommandTests,
  freshDatabasePerTest,
  concurrentMigrateTest,
  failedMigrationTest,
  migrationRows,
  run,
} from '../support/migration-commands.suite.js';
import { ROOT, commandScript, lines, runScript, startScript } from '../support/run-command.js';
import { scaled } from '../support/timing.js';

const SQLITE_FILE = "type: 'better-sqlite3', database: process.env.DATABASE_URL";
const MIGRATION = 'class A1700000000001 { async up() {} async down() {} }';

describe('checkmigrations and migrate on SQLite', () => {
  const context = freshDatabasePerTest(createSqliteDatabase);
  const db = (): ThrowAwayDatabase => context.db();

  it('checks a database file that does not exist yet without creating it', async () => {
    const result = await run(context, ['checkmigrations']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^Not ready: 2 pending migrations on better-sqlite3 /);
    expect(existsSync(db().name)).toBe(false);
  });

  it.each([
    [['--wait', 'checkmigrations']],
    [['CheckMigrations', '--wait']],
    [['--interval', '1']],
    [['--port', '8080', 'migrate']],
  ])('%j is a usage error (exit 2, one line): the app never starts for it', async (args) => {
    const result = await run(context, args, db().url, {
      env: { PORT: '0' },
      timeoutMs: 20_000,
    });
    expect(result.timedOut).toBe(false);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(lines(result.stderr)).toEqual([
      expect.stringMatching(
        /^(checkmigrations|migrate): the command must be the first argument, .*; see "\1 --help"\.$/,
      ),
    ]);
    expect(existsSync(db().name)).toBe(false);
  });

  it('a leading -- before the command is skipped (node main.js -- checkmigrations)', async () => {
    const result = await run(context, ['--', 'checkmigrations']);
    expect(result.code).toBe(1);
    expect(lines(result.stderr)).toEqual([
      expect.stringMatching(/^Not ready: 2 pending migrations on better-sqlite3 /),
    ]);
  });

  it('a mistyped server URL is refused with exit 2 and never becomes a SQLite file', async () => {
    for (const url of ['postgres:/127.0.0.1/k8s_mig_x', 'mysql:127.0.0.1/x', 'postgress://h/x']) {
      for (const command of ['checkmigrations', 'migrate']) {
        const result = await run(context, [command], url);
        expect(result.code).toBe(2);
        expect(result.stdout).toBe('');
        expect(lines(result.stderr)).toEqual([
          expect.stringMatching(new RegExp(`^${command}: configuration error: DATABASE_URL `)),
        ]);
      }
      expect(existsSync(join(ROOT, url.slice(0, url.indexOf(':') + 1)))).toBe(false);
    }
  });

  it('a SQLite file in a directory that does not exist is exit 2 for both commands, creating nothing', async () => {
    const missing = join(dirname(db().name), 'not-mounted');
    for (const command of ['checkmigrations', 'migrate']) {
      const result = await run(context, [command, '--timeout', '30'], join(missing, 'app.sqlite'));
      expect(result.code).toBe(2);
      expect(lines(result.stderr)).toEqual([
        expect.stringMatching(
          /^Configuration error on better-sqlite3 .*: the directory .*not-mounted does not exist .*waiting will not help\.$/,
        ),
      ]);
      expect(existsSync(missing)).toBe(false);
    }
  });

  it('sqlite: and file: URLs name a SQLite file', async () => {
    for (const url of [`sqlite:${db().name}`, `file://${db().name}`]) {
      const result = await run(context, ['checkmigrations'], url);
      expect(result.code).toBe(1);
      expect(lines(result.stderr)).toEqual([
        `Not ready: 2 pending migrations on better-sqlite3 ${db().name}: CreateItems1732540000000, AddItemPrice1732540100000`,
      ]);
    }
    expect(existsSync(db().name)).toBe(false);
  });

  commonCommandTests(context);

  it.each([
    ['each', ['A1700000000001', 'Slow1700000000002'], ''],
    [
      'all',
      ['A1700000000001', 'Slow1700000000002', 'C1700000000003'],
      ' and the rest of its transaction',
    ],
  ] as const)(
    'SIGTERM while a migration runs (mode %s): said at once, the migration finishes, then exit 143',
    async (mode, applied, rest) => {
      const fresh = createSqliteDatabase();
      try {
        const command = startScript(
          commandScript({
            prelude: `
class A1700000000001 { async up(q) { await q.query('CREATE TABLE a (id INTEGER)'); } async down() {} }
class Slow1700000000002 {
  async up(q) {
    console.log('slow started');
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await q.query('CREATE TABLE slow (id INTEGER)');
  }
  async down() {}
}
class C1700000000003 { async up(q) { await q.query('CREATE TABLE c (id INTEGER)'); } async down() {} }`,
            dataSources: `{ ${SQLITE_FILE}, migrationsTransactionMode: '${mode}', migrations: [A1700000000001, Slow1700000000002, C1700000000003] }`,
          }),
          ['migrate'],
          { env: { DATABASE_URL: fresh.name } },
        );
        await command.waitForOutput('slow started');
        command.child.kill('SIGTERM');
        await command.waitForOutput('SIGTERM received: ');
        // Said while the migration still runs, not once it is over.
        expect(command.child.exitCode).toBeNull();
        const result = await command.result;
        expect(result.code).toBe(143);
        expect(lines(result.stderr)).toEqual([
          `SIGTERM received: finishing Slow1700000000002${rest} before exiting`,
        ]);
        expect(lines(result.stdout)).toEqual([
          'slow started',
          `Applied ${applied.length} migrations on better-sqlite3 ${fresh.name}: ${applied.join(', ')}.`,
        ]);
        expect(await migrationRows(fresh)).toEqual(applied);
      } finally {
        await fresh.drop();
      }
    },
  );

  concurrentMigrateTest(context, async () => createSqliteDatabase());
  failedMigrationTest(context, async () => createSqliteDatabase(), SQLITE_FILE, {
    mode: 'all',
    kept: false,
  });

  it('a check leaves an existing file as it was, even with enableWAL', async () => {
    const fresh = createSqliteDatabase();
    try {
      const Database = createRequire(import.meta.url)('better-sqlite3') as new (path: string) => {
        exec(sql: string): void;
        pragma(sql: string, options: { simple: true }): unknown;
        close(): void;
      };
      const file = new Database(fresh.name);
      file.exec('CREATE TABLE kept (id INTEGER)');
      file.close();
      const result = await runScript(
        commandScript({
          prelude: MIGRATION,
          dataSources: `{ ${SQLITE_FILE}, enableWAL: true, migrations: [A1700000000001] }`,
        }),
        ['checkmigrations'],
        { env: { DATABASE_URL: fresh.name } },
      );
      expect(result.code).toBe(1);
      expect(lines(result.stderr)).toEqual([
        expect.stringMatching(
          /^Not ready: 1 pending migration on better-sqlite3 .*: A1700000000001$/,
        ),
      ]);
      const after = new Database(fresh.name);
      try {
        expect(after.pragma('journal_mode', { simple: true })).toBe('delete');
      } finally {
        after.close();
      }
      expect(existsSync(`${fresh.name}-wal`)).toBe(false);
      expect(await fresh.hasTable('migrations')).toBe(false);
    } finally {
      await fresh.drop();
    }
  });

  it.each([
    ['an empty list', '[]'],
    ['a glob that matches nothing', "['/nonexistent-k8s-migrations/*.js']"],
  ])(
    'no migrations configured (%s) is exit 2 with a clear line, for both commands',
    async (_, list) => {
      const fresh = createSqliteDatabase();
      try {
        const script = commandScript({ dataSources: `{ ${SQLITE_FILE}, migrations: ${list} }` });
        for (const command of ['checkmigrations', 'migrate']) {
          const result = await runScript(script, [command, '--timeout', '30'], {
            env: { DATABASE_URL: fresh.name },
          });
          expect(result.code).toBe(2);
          expect(result.stdout).toBe('');
          expect(lines(result.stderr)).toEqual([
            expect.stringMatching(
              /^Configuration error on better-sqlite3 .*: no migrations found; check the data source's `migrations` option\. /,
            ),
          ]);
        }
      } finally {
        await fresh.drop();
      }
    },
  );

  it('exits 143 at once on SIGTERM while the dataSources factory still runs', async () => {
    const command = startScript(
      commandScript({
        prelude: `${MIGRATION}
const slowOptions = async () => {
  console.log('reading options');
  await new Promise((resolve) => setTimeout(resolve, 60000));
  return { ${SQLITE_FILE}, migrations: [A1700000000001] };
};`,
        dataSources: 'await slowOptions()',
      }),
      ['checkmigrations', '--wait'],
      { env: { DATABASE_URL: db().name } },
    );
    await command.waitForOutput('reading options');
    const signalled = Date.now();
    command.child.kill('SIGTERM');
    const result = await command.result;
    expect(Date.now() - signalled).toBeLessThan(scaled(3_000));
    expect(result.code).toBe(143);
    expect(lines(result.stderr)).toEqual([
      'Interrupted by SIGTERM while reading the data source options',
    ]);
  });
});
