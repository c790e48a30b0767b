import { afterAll, beforeAll, describe } from 'vitest';
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
  passwordNeverPrintedTest,
  serverCommandTests,
} from '../support/migration-commands.suite.js';
import { serviceAvailable } from '../support/services.js';

const available = serviceAvailable(
  'MariaDB',
  await mariadbAvailable(),
  `expected on ${MARIADB.host}:${MARIADB.port}, user ${MARIADB.adminUser} without password`,
);

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
  concurrentMigrateTest(context, createMariadbDatabase);
  passwordNeverPrintedTest(context);
});
