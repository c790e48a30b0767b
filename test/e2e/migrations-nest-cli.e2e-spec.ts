import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createSqliteDatabase } from '../support/databases.js';
import { ROOT, lines, runNestStart } from '../support/run-command.js';
import { EXPECTED_TYPEORM_COPY, reportedTypeormCopies } from '../support/typeorm-line.js';

// The documented command, run from the root of a copy of the repository: `nest start` rebuilds
// dist/ first, and doing that in the repository itself would swap the files other test files
// are running (`node dist/sample/main.js`) under their feet. The copy has the same sources and
// configuration files and the same node_modules (a link), so it runs exactly what a user's
// checkout runs. Slow (nest builds first), so only one case: a non-zero exit code must come
// back through the CLI.
describe('npx nest start -- checkmigrations', () => {
  const db = createSqliteDatabase();
  const copy = mkdtempSync(join(tmpdir(), 'k8s-nest-start-'));
  afterAll(async () => {
    await db.drop();
    rmSync(copy, { recursive: true, force: true });
  });

  it('runs the command in the sample and passes its exit code and line back', async () => {
    for (const entry of [
      'package.json',
      'nest-cli.json',
      'tsconfig.json',
      'tsconfig.build.json',
      'lib',
      'sample',
    ]) {
      cpSync(join(ROOT, entry), join(copy, entry), { recursive: true });
    }
    symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');

    const result = await runNestStart(['checkmigrations'], {
      cwd: copy,
      env: { DATABASE_URL: db.url },
      reportTypeorm: true,
    });
    expect(result.code).toBe(1);
    // The app nest started ran on the TypeORM line under test (the CLI itself loads none).
    expect(reportedTypeormCopies(result.stdout)).toEqual([
      expect.stringMatching(EXPECTED_TYPEORM_COPY),
    ]);
    expect(lines(result.stderr).at(-1)).toMatch(
      /^Not ready: 2 pending migrations on better-sqlite3 .*: CreateItems1732540000000, AddItemPrice1732540100000$/,
    );
  }, 150_000);
});
