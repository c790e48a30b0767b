import { afterAll, beforeAll, describe } from 'vitest';
import {
  POSTGRES,
  createPostgresDatabase,
  postgresAvailable,
  throwAwayName,
} from '../support/databases.js';
import type { ThrowAwayDatabase } from '../support/databases.js';
import {
  commonCommandTests,
  concurrentMigrateTest,
  passwordNeverPrintedTest,
  serverCommandTests,
} from '../support/migration-commands.suite.js';
import { serviceAvailable } from '../support/services.js';

const available = serviceAvailable(
  'PostgreSQL',
  await postgresAvailable(),
  `expected on ${POSTGRES.host}:${POSTGRES.port}, user ${POSTGRES.adminUser}`,
);

describe.skipIf(!available)('checkmigrations and migrate on PostgreSQL', () => {
  let db: ThrowAwayDatabase;
  const context = { db: () => db, outputs: [] as string[] };

  beforeAll(async () => {
    db = await createPostgresDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  commonCommandTests(context);
  serverCommandTests(
    context,
    {
      // This server trusts 127.0.0.1 (pg_hba.conf), so a wrong password is accepted; an unknown
      // role is the refusal it can produce (SQLSTATE 28000). MariaDB tests a wrong password.
      badCredentials: () =>
        db.url.replace('postgres://postgres:', `postgres://${throwAwayName('nobody')}:`),
      unknownDatabase: () => db.url.replace(/\/[^/]+$/, `/${throwAwayName('missing')}`),
    },
    POSTGRES.port,
  );
  concurrentMigrateTest(context, createPostgresDatabase);
  passwordNeverPrintedTest(context);
});
