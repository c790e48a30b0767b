import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqliteDatabase } from '../support/databases.js';
import type { ThrowAwayDatabase } from '../support/databases.js';
import {
  commonCommandTests,
  concurrentMigrateTest,
  run,
} from '../support/migration-commands.suite.js';

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
});
