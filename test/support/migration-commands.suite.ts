import { afterEach, beforeEach, expect, it } from 'vitest';
import type { ThrowAwayDatabase } from './databases.js';
import {
  commandScript,
  hasStackTrace,
  lines,
  runSample,
  runScript,
  startSample,
} from './run-command.js';
import type { CommandResult, RunOptions } from './run-command.js';
import { closedPort, startTcpProxy } from './tcp-proxy.js';
import { scaled } from './timing.js';
import { EXPECTED_TYPEORM_COPY, TYPEORM_LINE, reportedTypeormCopies } from './typeorm-line.js';

/** The sample's migrations, in the order they run. */
/** An interval long enough that finishing sooner proves no attempt was repeated, even on a loaded machine. */
const NO_RETRY_INTERVAL_S = 20;
/**
 * A command that must end "at once" or at its --timeout ends well within this, start-up included
 * (a loaded machine was seen to take 8 s to start the sample and load TypeORM); a command that
 * waited for its default timeout instead would take minutes.
 */
const ENDS_PROMPTLY_MS = scaled(20_000);

export const MIGRATIONS = ['CreateItems1732540000000', 'AddItemPrice1732540100000'];

/** What the tests of one database file share. */
export interface SuiteContext {
  /** The running test's own throw-away database (see {@link freshDatabasePerTest}). */
  db(): ThrowAwayDatabase;
  /** Everything a command printed during the running test. */
  outputs: string[];
}

/**
 * A fresh database for every test of the enclosing `describe`, dropped after it, so each test
 * sets up the state it needs and the tests pass in any order. After each test, no output of it
 * may hold that database's password, plain or URL-encoded.
 */
export function freshDatabasePerTest(
  create: () => ThrowAwayDatabase | Promise<ThrowAwayDatabase>,
): SuiteContext {
  let current: ThrowAwayDatabase | undefined;
  const context: SuiteContext = {
    db: () => {
      if (!current) throw new Error('no database outside a test');
      return current;
    },
    outputs: [],
  };
  beforeEach(async () => {
    context.outputs.length = 0;
    current = await create();
  });
  afterEach(async () => {
    const db = current;
    current = undefined;
    try {
      if (db?.password) expectPasswordNotIn(context.outputs, db.password);
    } finally {
      await db?.drop();
    }
  });
  return context;
}

function expectPasswordNotIn(outputs: readonly string[], password: string): void {
  for (const output of outputs) {
    expect(output).not.toContain(password);
    expect(output).not.toContain(encodeURIComponent(password));
  }
}

/** Run the sample against `url` and keep what it printed. */
export async function run(
  context: SuiteContext,
  args: string[],
  url = context.db().url,
  options: RunOptions = {},
): Promise<CommandResult> {
  const result = await runSample(args, { ...options, env: { DATABASE_URL: url, ...options.env } });
  context.outputs.push(result.stdout, result.stderr);
  return result;
}

/**
 * The tests every database gets, each on its own fresh database: pending, waiting, usage,
 * interruption, migrate, and the checks after it.
 */
export function commonCommandTests(context: SuiteContext): void {
  it(`runs on TypeORM ${TYPEORM_LINE}: the library, the sample's migrations and its data source load that one copy`, async () => {
    const result = await run(context, ['checkmigrations'], context.db().url, {
      reportTypeorm: true,
    });
    const loaded = reportedTypeormCopies(result.stdout);
    console.log(`checkmigrations in the sample loaded TypeORM: ${loaded?.join(', ')}`);
    // The command ran (pending migrations on a fresh database) on that copy.
    expect(result.code).toBe(1);
    expect(loaded).toEqual([expect.stringMatching(EXPECTED_TYPEORM_COPY)]);
  });

  it('reports pending migrations at once with exit 1, naming count and migrations, and writes nothing', async () => {
    const result = await run(context, ['checkmigrations']);
    expect(result.code).toBe(1);
    expect(result.durationMs).toBeLessThan(ENDS_PROMPTLY_MS);
    expect(result.stdout).toBe('');
    const errors = lines(result.stderr);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^Not ready: 2 pending migrations on /);
    expect(errors[0]).toContain(MIGRATIONS.join(', '));
    expect(await context.db().hasTable('migrations')).toBe(false);
  });

  it('with --wait --timeout 3 and pending migrations, gives up after about 3 s with exit 1', async () => {
    const result = await run(context, [
      'checkmigrations',
      '--wait',
      '--timeout',
      '3',
      '--interval',
      '0.5',
    ]);
    expect(result.code).toBe(1);
    expect(result.durationMs).toBeGreaterThanOrEqual(2_500);
    expect(result.durationMs).toBeLessThan(ENDS_PROMPTLY_MS);
    const progress = lines(result.stdout);
    expect(progress.length).toBeGreaterThanOrEqual(2);
    progress.forEach((line, i) =>
      expect(line).toMatch(
        new RegExp(`^Waiting \\(attempt ${i + 1}, [\\d.]+ s elapsed\\): 2 pending migrations`),
      ),
    );
    expect(lines(result.stderr)).toEqual([
      expect.stringMatching(
        /^Timed out after 3 s, not ready: 2 pending migrations on .*CreateItems1732540000000/,
      ),
    ]);
    expect(await context.db().hasTable('migrations')).toBe(false);
  });

  it('exits promptly with a non-zero code on SIGTERM while waiting', async () => {
    const command = startSample(
      ['checkmigrations', '--wait', '--timeout', '60', '--interval', '0.5'],
      {
        env: { DATABASE_URL: context.db().url },
      },
    );
    await command.waitForOutput('Waiting (attempt 1,');
    const signalled = Date.now();
    command.child.kill('SIGTERM');
    const result = await command.result;
    context.outputs.push(result.stdout, result.stderr);
    expect(Date.now() - signalled).toBeLessThan(scaled(3_000));
    expect(result.code).toBe(143);
    expect(lines(result.stderr)).toEqual([
      expect.stringMatching(/^Interrupted by SIGTERM while waiting/),
    ]);
  });

  it('rejects an unknown option with exit 2 and the usage', async () => {
    const result = await run(context, ['checkmigrations', '--wiat']);
    expect(result.code).toBe(2);
    // One line: the problem, the synopsis, and a pointer to --help.
    expect(lines(result.stderr)).toEqual([
      expect.stringMatching(
        /^checkmigrations: unknown option "--wiat"\. Usage: checkmigrations \[--wait\].*; see "checkmigrations --help"\.$/,
      ),
    ]);
    const migrate = await run(context, ['migrate', '--wait']);
    expect(migrate.code).toBe(2);
    expect(lines(migrate.stderr)).toEqual([expect.stringContaining('Usage: migrate')]);
    const loose = await run(context, ['checkmigrations', '--timeout', '0x10']);
    expect(loose.code).toBe(2);
    expect(lines(loose.stderr)).toEqual([
      expect.stringMatching(/^checkmigrations: --timeout must be a number of seconds .*"0x10"/),
    ]);
    expect(await context.db().hasTable('migrations')).toBe(false);
  });

  it('prints the usage with --help and exit 0', async () => {
    const check = await run(context, ['checkmigrations', '--help']);
    expect(check.code).toBe(0);
    expect(check.stdout).toContain(
      'Usage: checkmigrations [--wait] [--timeout SECONDS] [--interval SECONDS]',
    );
    const migrate = await run(context, ['migrate', '--help']);
    expect(migrate.code).toBe(0);
    expect(migrate.stdout).toContain('Usage: migrate [--timeout SECONDS]');
  });

  it('migrate applies the pending migrations and names them, exit 0', async () => {
    const result = await run(context, ['migrate']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      new RegExp(`^Applied 2 migrations on .*: ${MIGRATIONS.join(', ')}\\.\\n$`),
    );
    expect(await migrationRows(context.db())).toEqual(MIGRATIONS);
    expect(await context.db().query('SELECT name, price FROM item ORDER BY id')).toEqual([
      { name: 'Apple', price: 120 },
      { name: 'Bread', price: 250 },
      { name: 'Cheese', price: 480 },
    ]);
  });

  it('after migrate, checkmigrations prints "Migrations complete." with exit 0, with or without --wait', async () => {
    expect((await run(context, ['migrate'])).code).toBe(0);
    for (const args of [['checkmigrations'], ['checkmigrations', '--wait', '--timeout', '10']]) {
      const result = await run(context, args);
      expect(result.code).toBe(0);
      expect(result.stdout).toBe('Migrations complete.\n');
      expect(result.stderr).toBe('');
    }
  });

  it('migrate again applies nothing and exits 0', async () => {
    expect((await run(context, ['migrate'])).code).toBe(0);
    const result = await run(context, ['migrate']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^No migrations pending on .*\.\n$/);
    expect(await migrationRows(context.db())).toEqual(MIGRATIONS);
  });
}

/**
 * Five `migrate` at once on a fresh database: each migration applied once, every copy exits 0.
 * The lock is held from a session of the test until all five say they wait for it, so the five
 * certainly contend (process start-up alone would stagger them).
 */
export function concurrentMigrateTest(
  context: Pick<SuiteContext, 'outputs'>,
  create: () => Promise<ThrowAwayDatabase>,
): void {
  it('five concurrent migrate runs wait for the lock, apply each migration exactly once and all exit 0', async () => {
    const db = await create();
    let release: (() => Promise<void>) | undefined = await db.holdMigrationLock();
    try {
      const commands = Array.from({ length: 5 }, () =>
        startSample(['migrate', '--timeout', '60'], {
          env: { DATABASE_URL: db.url },
          timeoutMs: 90_000,
        }),
      );
      await Promise.all(
        commands.map((command) => command.waitForOutput('Waiting for the migration lock on ')),
      );
      await release();
      release = undefined;
      const results = await Promise.all(commands.map((command) => command.result));
      for (const result of results) context.outputs.push(result.stdout, result.stderr);
      expect(results.map((result) => [result.code, result.stderr])).toEqual(
        results.map(() => [0, '']),
      );
      // Every migration is named in exactly one "Applied" line; the other copies found nothing pending.
      const appliedLines = results
        .flatMap((result) => lines(result.stdout))
        .filter((line) => line.startsWith('Applied'));
      for (const name of MIGRATIONS) {
        expect(appliedLines.filter((line) => line.includes(name))).toHaveLength(1);
      }
      expect(await migrationRows(db)).toEqual(MIGRATIONS);
      expect(await db.query('SELECT name FROM item ORDER BY id')).toEqual([
        { name: 'Apple' },
        { name: 'Bread' },
        { name: 'Cheese' },
      ]);
    } finally {
      await release?.();
      await db.drop();
    }
  }, 120_000);
}

/** Tests that need a database server: unreachable, coming up, refused, unknown. */
export function serverCommandTests(
  context: SuiteContext,
  urls: { badCredentials(): string; unknownDatabase(): string },
  serverPort: number,
): void {
  it('waits on an unreachable port and gives up after --timeout 3 with exit 1, one line, no stack trace', async () => {
    const url = context.db().urlWithPort(await closedPort());
    const result = await run(context, ['checkmigrations', '--wait', '--timeout', '3'], url);
    expect(result.code).toBe(1);
    expect(result.durationMs).toBeGreaterThanOrEqual(2_500);
    expect(result.durationMs).toBeLessThan(ENDS_PROMPTLY_MS);
    expect(lines(result.stderr)).toEqual([
      expect.stringMatching(
        /^Timed out after 3 s, not ready: database unreachable: .*ECONNREFUSED/,
      ),
    ]);
    for (const line of lines(result.stdout))
      expect(line).toMatch(/^Waiting \(attempt \d+, [\d.]+ s elapsed\): database unreachable/);
    expect(hasStackTrace(result.stdout + result.stderr)).toBe(false);
  });

  it('exits 0 when the database becomes reachable during the wait', async () => {
    // Migrated first (this test's own database): once reachable, nothing is pending.
    expect((await run(context, ['migrate'])).code).toBe(0);
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: serverPort });
    try {
      const command = startSample(
        ['checkmigrations', '--wait', '--timeout', '30', '--interval', '0.5'],
        { env: { DATABASE_URL: context.db().urlWithPort(proxy.port) } },
      );
      // The database "comes up" only once the command has seen it down.
      await command.waitForOutput('Waiting (attempt 1,');
      proxy.forward();
      const result = await command.result;
      context.outputs.push(result.stdout, result.stderr);
      // The transcript the issue asks to see.
      console.log(
        `checkmigrations --wait through a proxy that forwards after the first attempt:\n${result.stdout}${result.stderr}`,
      );
      expect(result.code).toBe(0);
      const out = lines(result.stdout);
      expect(out.length).toBeGreaterThanOrEqual(2);
      for (const line of out.slice(0, -1)) {
        expect(line).toMatch(/^Waiting \(attempt \d+, [\d.]+ s elapsed\): database unreachable/);
      }
      expect(out.at(-1)).toBe('Migrations complete.');
      expect(result.stderr).toBe('');
    } finally {
      await proxy.close();
    }
  });

  it('refused credentials give exit 2 on the first attempt, even with --wait', async () => {
    const result = await run(
      context,
      ['checkmigrations', '--wait', '--interval', String(NO_RETRY_INTERVAL_S), '--timeout', '60'],
      urls.badCredentials(),
    );
    expect(result.code).toBe(2);
    // A second attempt would come one interval after the first (and print a "Waiting" line).
    expect(result.durationMs).toBeLessThan(NO_RETRY_INTERVAL_S * 1000);
    expect(lines(result.stderr)).toEqual([
      expect.stringMatching(/^Access denied on .*waiting will not help\.$/),
    ]);
    // No attempt was retried.
    expect(result.stdout).toBe('');
    expect(hasStackTrace(result.stderr)).toBe(false);
  });

  it('an unknown database gives exit 2 on the first attempt, even with --wait', async () => {
    const result = await run(
      context,
      ['checkmigrations', '--wait', '--interval', String(NO_RETRY_INTERVAL_S), '--timeout', '60'],
      urls.unknownDatabase(),
    );
    expect(result.code).toBe(2);
    expect(result.durationMs).toBeLessThan(NO_RETRY_INTERVAL_S * 1000);
    expect(result.stdout).toBe('');
    expect(lines(result.stderr)).toEqual([
      expect.stringMatching(/^Unknown database on .*waiting will not help\.$/),
    ]);
    const migrate = await run(context, ['migrate'], urls.unknownDatabase());
    expect(migrate.code).toBe(2);
  });
}

/**
 * A migration that throws (a TypeError, whose message carries the URL and the password) after
 * one that worked: exit 1, one line that names the failed migration and says whether the one
 * before it is still applied, as the migrations table says, and no secret printed.
 * `connection` is the JS of the data source options that say where the database is.
 */
export function failedMigrationTest(
  context: Pick<SuiteContext, 'outputs'>,
  create: () => Promise<ThrowAwayDatabase>,
  connection: string,
  { mode, kept }: { mode: 'all' | 'each'; kept: boolean },
): void {
  it(`a migration that throws, transaction mode "${mode}": exit 1, names it and what ran before it`, async () => {
    const db = await create();
    try {
      const script = commandScript({
        prelude: `
class First1700000000001 {
  async up(q) { await q.query('CREATE TABLE first_table (id INTEGER PRIMARY KEY)'); }
  async down() {}
}
class Boom1700000000002 {
  async up() {
    throw new TypeError('cannot use ' + process.env.DATABASE_URL + ' as ' + process.env.DB_PASSWORD);
  }
  async down() {}
}`,
        dataSources: `{ ${connection}, migrationsTransactionMode: '${mode}', migrations: [First1700000000001, Boom1700000000002] }`,
      });
      const result = await runScript(script, ['migrate'], {
        env: { DATABASE_URL: db.url, DB_PASSWORD: db.password },
      });
      context.outputs.push(result.stdout, result.stderr);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      const errors = lines(result.stderr);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/^Migration Boom1700000000002 failed on .*: cannot use /);
      expect(errors[0]).toMatch(
        kept
          ? /Applied before it in this run, and still applied: First1700000000001\.$/
          : /Applied before it in this run, then rolled back with it: First1700000000001\.$/,
      );
      if (db.password) {
        expect(errors[0]).toContain('***');
        expect(errors[0]).not.toContain(db.password);
        expect(errors[0]).not.toContain(encodeURIComponent(db.password));
      }
      expect(await migrationRows(db)).toEqual(kept ? ['First1700000000001'] : []);
    } finally {
      await db.drop();
    }
  });
}

/**
 * No command prints the database password, plain or URL-encoded, whatever it reports: the
 * password holds the characters a URL must encode and a sloppy mask cuts at. (Every other test
 * checks its own outputs too, see {@link freshDatabasePerTest}.)
 */
export function passwordNeverPrintedTest(context: SuiteContext): void {
  it('never prints the password', async () => {
    const { password, url } = context.db();
    expect(password).toMatch(/^(?=.*@)(?=.*:)(?=.*\/)(?=.*#)(?=.*%)(?=.* )/);
    // The lines that name the database: pending, refused, applied.
    const results = [
      ...(await Promise.all([
        run(context, ['checkmigrations']),
        run(context, ['checkmigrations'], url.replace(/\/[^/]+$/, '/k8s_mig_missing')),
      ])),
      await run(context, ['migrate']),
    ];
    // Each reported something about the database, so there was text to leak into.
    expect(results.map((result) => result.code)).toEqual([1, 2, 0]);
    for (const result of results) expect(result.stdout + result.stderr).not.toBe('');
    expectPasswordNotIn(context.outputs, password);
  });
}

/** The names the migrations table records, in order. */
export async function migrationRows(db: ThrowAwayDatabase): Promise<string[]> {
  const rows = await db.query<{ name: string }>('SELECT name FROM migrations ORDER BY id');
  return rows.map((row) => row.name);
}
