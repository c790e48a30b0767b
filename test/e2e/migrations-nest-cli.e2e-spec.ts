import { afterAll, describe, expect, it } from 'vitest';
import { createSqliteDatabase } from '../support/databases.js';
import { lines, runNestStart } from '../support/run-command.js';

// The documented command from the repository root. Slow (nest builds first), so only one case:
// a non-zero exit code must come back through the CLI.
describe('npx nest start -- checkmigrations', () => {
  const db = createSqliteDatabase();
  afterAll(() => db.drop());

  it('runs the command in the sample and passes its exit code and line back', async () => {
    const result = await runNestStart(['checkmigrations'], { env: { DATABASE_URL: db.url } });
    expect(result.code).toBe(1);
    expect(lines(result.stderr).at(-1)).toMatch(
      /^Not ready: 2 pending migrations on better-sqlite3 .*: CreateItems1732540000000, AddItemPrice1732540100000$/,
    );
  }, 150_000);
});
