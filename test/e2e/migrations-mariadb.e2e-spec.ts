import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MARIADB,
  createMariadbDatabase,
  mariadbAvailable,
  throwAwayName,
} from '../support/databases.js';
import type { ThrowAwayDatabase } from '../support/databases.js';
import {
  commonCommandTests,
  concurrentMigrateTest,
  failedMigrationTest,
  passwordNeverPrintedTest,
  serverCommandTests,
} from '../support/migration-commands.suite.js';
import { commandScript, lines, runScript } from '../support/run-command.js';
import { serviceAvailable } from '../support/services.js';

const available = serviceAvailable(
  'MariaDB',
  await mariadbAvailable(),
  `expected on ${MARIADB.host}:${MARIADB.port}, user ${MARIADB.adminUser} without password`,
);

const MARIADB_URL = "type: 'mariadb', url: process.env.DATABASE_URL";

describe.skipIf(!available)('checkmigrations and migrate on MariaDB', () => {
  let db: ThrowAwayDatabase;
  const context = { db: () => db, outputs: [] as string[] };

  beforeAll(async () => {
    db = await createMariadbDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  commonCommandTests(context);
  serverCommandTests(
    context,
    {
      badCredentials: () => db.url.replace(encodeURIComponent(db.password), 'wrong-password'),
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
      { env: { DATABASE_URL: db.url } },
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
