import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqliteDatabase } from '../support/databases.js';
import type { ThrowAwayDatabase } from '../support/databases.js';
import {
  commonCommandTests,
  concurrentMigrateTest,
  failedMigrationTest,
  run,
} from '../support/migration-commands.suite.js';
import { commandScript, lines, runScript, startScript } from '../support/run-command.js';

const SQLITE_FILE = "type: 'better-sqlite3', database: process.env.DATABASE_URL";
const MIGRATION = 'class A1700000000001 { async up() {} async down() {} }';

describe('checkmigrations and migrate on SQLite', () => {
  let db: ThrowAwayDatabase;
  const context = { db: () => db, outputs: [] as string[] };

  beforeAll(() => {
    db = createSqliteDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('checks a database file that does not exist yet without creating it', async () => {
    const result = await run(context, ['checkmigrations']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^Not ready: 2 pending migrations on better-sqlite3 /);
    expect(existsSync(db.name)).toBe(false);
  });

  commonCommandTests(context);
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
      { env: { DATABASE_URL: db.name } },
    );
    await command.waitForOutput('reading options');
    const signalled = Date.now();
    command.child.kill('SIGTERM');
    const result = await command.result;
    expect(Date.now() - signalled).toBeLessThan(3_000);
    expect(result.code).toBe(143);
    expect(lines(result.stderr)).toEqual([
      'Interrupted by SIGTERM while reading the data source options',
    ]);
  });
});
