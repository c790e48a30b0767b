import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import {
  MARIADB,
  POSTGRES,
  createMariadbDatabase,
  createPostgresDatabase,
  createSqliteDatabase,
  mariadbReady,
  postgresReady,
} from '../support/databases.js';
import type { ThrowAwayDatabase } from '../support/databases.js';
import { migrationRows } from '../support/migration-commands.suite.js';
import {
  commandScript,
  hasStackTrace,
  lines,
  runSample,
  startScript,
} from '../support/run-command.js';
import type { CommandResult } from '../support/run-command.js';
import { closedPort, startSilentServer, startTcpProxy } from '../support/tcp-proxy.js';
import { scaled } from '../support/timing.js';

/**
 * `migrate` and `checkmigrations` when the database fails under them. The machine's database
 * servers are shared, so "the database dies" is injected without stopping them: the migrating
 * session is killed by the server (`pg_terminate_backend`, `KILL`), or every connection is cut
 * at a TCP proxy that then refuses new ones (the server is gone) until the test brings it back.
 * SQLite: the migrating process itself is killed with SIGKILL.
 */

const postgres = await postgresReady();
const mariadb = await mariadbReady();

/** Three migrations, one transaction each; the second waits inside the database. */
const MIGRATIONS = ['First1700000000001', 'Slow1700000000002', 'Last1700000000003'];

/**
 * The migrations as a script running the built command entry. `SLOW_SQL` is what the second
 * migration runs before creating its table (a sleep, so the fault lands inside it).
 */
function migrationsScript(type: 'postgres' | 'mariadb' | 'better-sqlite3'): string {
  const source =
    type === 'better-sqlite3'
      ? "database: process.env.DATABASE_URL, type: 'better-sqlite3'"
      : `type: '${type}', url: process.env.DATABASE_URL`;
  return commandScript({
    prelude: `
class First1700000000001 {
  async up(q) { await q.query('CREATE TABLE first_table (id INTEGER)'); }
  async down() {}
}
class Slow1700000000002 {
  async up(q) {
    await q.query('CREATE TABLE slow_table (id INTEGER)');
    console.log('slow migration started');
    if (process.env.SLOW_SQL) await q.query(process.env.SLOW_SQL);
    if (process.env.SLOW_MS) await new Promise((resolve) => setTimeout(resolve, Number(process.env.SLOW_MS)));
  }
  async down() {}
}
class Last1700000000003 {
  async up(q) { await q.query('CREATE TABLE last_table (id INTEGER)'); }
  async down() {}
}`,
    dataSources: `{ ${source}, migrationsTransactionMode: 'each', migrations: [First1700000000001, Slow1700000000002, Last1700000000003] }`,
  });
}

/** Which of the migrations' tables exist: the schema, to compare with the migrations table. */
async function tables(db: ThrowAwayDatabase): Promise<string[]> {
  const found: string[] = [];
  for (const table of ['first_table', 'slow_table', 'last_table']) {
    if (await db.hasTable(table)) found.push(table);
  }
  return found;
}

/** Retry `kill` (which answers how many sessions it killed) until one is killed; bounded. */
async function killSession(kill: () => Promise<number>): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const killed = await kill();
    if (killed > 0) return killed;
    await delay(100);
  }
  return 0;
}

/** Faults injected and migrations wrongly recorded, over the tests that ran (for the report). */
const tally = { faults: 0, wronglyRecorded: 0 };

/**
 * One fault scenario on a fresh server database: `migrate` runs First, then the fault hits
 * inside Slow. Afterwards: exit 1 with one line naming Slow, the migrations table records First
 * only and the schema agrees; the lock is free (a second `migrate` takes it and applies the
 * rest, exit 0).
 */
async function faultDuringMigrate(
  create: () => Promise<ThrowAwayDatabase>,
  type: 'postgres' | 'mariadb',
  fault: 'session killed' | 'connection cut',
): Promise<void> {
  const db = await create();
  const proxy = await startTcpProxy({
    host: type === 'postgres' ? POSTGRES.host : MARIADB.host,
    port: type === 'postgres' ? POSTGRES.port : MARIADB.port,
  });
  proxy.forward();
  const outputs: string[] = [];
  try {
    const url = db.urlWithPort(proxy.port);
    // Long enough to be certainly inside it; after a cut, the orphaned server session sleeps on
    // (holding the lock) until the server notices its client is gone.
    const seconds = fault === 'session killed' ? 30 : 3;
    const command = startScript(migrationsScript(type), ['migrate'], {
      env: {
        DATABASE_URL: url,
        SLOW_SQL: type === 'postgres' ? `SELECT pg_sleep(${seconds})` : `SELECT SLEEP(${seconds})`,
      },
    });
    await command.waitForOutput('slow migration started');
    if (fault === 'session killed') {
      const killed = await killSession(async () =>
        type === 'postgres'
          ? (
              await db.query(
                `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${db.name}' AND query LIKE 'SELECT pg_sleep%'`,
              )
            ).length
          : (
              await Promise.all(
                (
                  await db.query<{ id: number }>(
                    `SELECT id FROM information_schema.processlist WHERE db = '${db.name}' AND info LIKE 'SELECT SLEEP%'`,
                  )
                ).map(({ id }) => db.query(`KILL ${id}`)),
              )
            ).length,
      );
      expect(killed).toBe(1);
    } else {
      // Give the sleep a moment to start on the server, then the database "dies".
      await delay(200);
      expect(proxy.cut()).toBeGreaterThanOrEqual(1);
    }
    tally.faults++;
    const failed = await command.result;
    outputs.push(failed.stdout, failed.stderr);
    expect(failed.code).toBe(1);
    expect(hasStackTrace(failed.stdout + failed.stderr)).toBe(false);
    expect(lines(failed.stderr)).toEqual([
      expect.stringMatching(
        fault === 'session killed'
          ? /^Migration Slow1700000000002 failed on .*\. Applied before it in this run, and still applied: First1700000000001\.$/
          : // The database is gone: the command cannot read what is recorded, and says so.
            /^Migration Slow1700000000002 failed on .*\. Applied before it in this run: First1700000000001 \(could not read which are still recorded\)\.$/,
      ),
    ]);

    // Nothing is recorded that did not complete, and the schema agrees with the records.
    const recorded = await migrationRows(db);
    tally.wronglyRecorded += recorded.filter((name) => name !== MIGRATIONS[0]).length;
    expect(recorded).toEqual([MIGRATIONS[0]]);
    // MariaDB commits DDL at once, so Slow's table may outlive its rolled-back record; on
    // PostgreSQL it goes with the transaction.
    const schema = await tables(db);
    expect(schema.filter((t) => t !== 'slow_table')).toEqual(['first_table']);
    if (type === 'postgres') expect(schema).toEqual(['first_table']);

    // The database is back: the lock was released with the dead session, so a second migrate
    // takes it (waiting, after a cut, until the server has dropped the orphaned session).
    proxy.forward();
    if (type === 'mariadb') await db.query('DROP TABLE IF EXISTS slow_table');
    const again = await runMigrate(type, url);
    outputs.push(again.stdout, again.stderr);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect(lines(again.stdout).at(-1)).toMatch(
      /^Applied 2 migrations on .*: Slow1700000000002, Last1700000000003\.$/,
    );
    expect(await migrationRows(db)).toEqual(MIGRATIONS);
    expect(await tables(db)).toEqual(['first_table', 'slow_table', 'last_table']);
    for (const output of outputs) {
      expect(output).not.toContain(db.password);
      expect(output).not.toContain(encodeURIComponent(db.password));
    }
  } finally {
    await proxy.close();
    await db.drop();
  }
}

function runMigrate(type: 'postgres' | 'mariadb', url: string): Promise<CommandResult> {
  return startScript(migrationsScript(type), ['migrate', '--timeout', '30'], {
    env: { DATABASE_URL: url },
    timeoutMs: 45_000,
  }).result;
}

describe.skipIf(!postgres)('migrate on PostgreSQL when the database fails mid-migration', () => {
  it('the migrating session is killed: exit 1, First kept, Slow not recorded, the lock is free', async () => {
    await faultDuringMigrate(createPostgresDatabase, 'postgres', 'session killed');
  });

  it('every connection is cut and the server refuses new ones: exit 1, nothing wrongly recorded; once back, a second migrate completes', async () => {
    await faultDuringMigrate(createPostgresDatabase, 'postgres', 'connection cut');
  });
});

describe.skipIf(!mariadb)('migrate on MariaDB when the database fails mid-migration', () => {
  it('the migrating connection is killed (KILL): exit 1, First kept, Slow not recorded, the lock is free', async () => {
    await faultDuringMigrate(createMariadbDatabase, 'mariadb', 'session killed');
  });

  it('every connection is cut and the server refuses new ones: exit 1, nothing wrongly recorded; once back, a second migrate completes', async () => {
    await faultDuringMigrate(createMariadbDatabase, 'mariadb', 'connection cut');
  });
});

describe('migrate on SQLite when the migrating process is killed', () => {
  it('SIGKILL inside a migration: the sidecar lock does not block the next migrate, which applies the rest', async () => {
    const db = createSqliteDatabase();
    try {
      const command = startScript(migrationsScript('better-sqlite3'), ['migrate'], {
        env: { DATABASE_URL: db.url, SLOW_MS: '30000' },
      });
      await command.waitForOutput('slow migration started');
      command.child.kill('SIGKILL');
      tally.faults++;
      const killed = await command.result;
      expect(killed.signal).toBe('SIGKILL');

      // The open transaction died with the process: First is recorded, Slow left no trace.
      const recorded = await migrationRows(db);
      tally.wronglyRecorded += recorded.filter((name) => name !== MIGRATIONS[0]).length;
      expect(recorded).toEqual([MIGRATIONS[0]]);
      expect(await tables(db)).toEqual(['first_table']);

      // --timeout 5: a lock left behind would make this wait and fail with exit 1.
      const again = await startScript(
        migrationsScript('better-sqlite3'),
        ['migrate', '--timeout', '5'],
        {
          env: { DATABASE_URL: db.url },
        },
      ).result;
      expect(again.stderr).toBe('');
      expect(again.code).toBe(0);
      // No "Waiting for the migration lock" line: nothing was left holding it.
      expect(
        lines(again.stdout).filter((line) => !line.includes('slow migration started')),
      ).toEqual([
        expect.stringMatching(
          /^Applied 2 migrations on .*: Slow1700000000002, Last1700000000003\.$/,
        ),
      ]);
      expect(await migrationRows(db)).toEqual(MIGRATIONS);
      expect(await tables(db)).toEqual(['first_table', 'slow_table', 'last_table']);
    } finally {
      await db.drop();
    }
  });
});

describe('checkmigrations against a database that accepts TCP and never answers', () => {
  // Correctness bounds, not speed claims: what start-up, loading TypeORM and the drivers and one
  // refused connect take (a control run at the same time as each test's, so whatever load the
  // machine has moves both), plus the time limit, plus a generous margin for the bounded close.
  const MARGIN_MS = scaled(4_000);

  /** `run()`, and beside it a control that starts, is refused at once and exits: its start-up. */
  async function withStartup<T>(run: () => Promise<T>): Promise<[T, number]> {
    const refusedUrl = `postgres://app@127.0.0.1:${await closedPort()}/app`;
    const [result, refused] = await Promise.all([
      run(),
      runSample(['checkmigrations'], { env: { DATABASE_URL: refusedUrl } }),
    ]);
    expect(refused.code).toBe(1);
    return [result, refused.durationMs];
  }

  it.each([
    ['postgres', 'postgres://app:pw-silent-9f3k@127.0.0.1:PORT/app'],
    ['mariadb', 'mariadb://app:pw-silent-9f3k@127.0.0.1:PORT/app'],
  ])(
    '%s: --wait --timeout 3 exits 1 on time, naming the unanswered database',
    async (_, template) => {
      const silent = await startSilentServer();
      try {
        const [result, startup] = await withStartup(() =>
          runSample(['checkmigrations', '--wait', '--timeout', '3'], {
            env: { DATABASE_URL: template.replace('PORT', String(silent.port)) },
          }),
        );
        tally.faults++;
        expect(result.timedOut).toBe(false);
        expect(result.code).toBe(1);
        expect(result.durationMs).toBeGreaterThanOrEqual(2_500);
        expect(result.durationMs).toBeLessThan(startup + 3_000 + MARGIN_MS);
        expect(lines(result.stderr)).toEqual([
          expect.stringMatching(
            new RegExp(
              `^Timed out after 3 s, not ready: database unreachable: .*127\\.0\\.0\\.1:${silent.port}/app: no answer within [\\d.]+ s$`,
            ),
          ),
        ]);
        expect(silent.connections()).toBeGreaterThanOrEqual(1);
        expect(result.stdout + result.stderr).not.toContain('pw-silent-9f3k');
      } finally {
        await silent.close();
      }
    },
  );

  it('migrate against it gives up after the connect limit with exit 1 instead of hanging', async () => {
    const silent = await startSilentServer();
    try {
      const [result, startup] = await withStartup(() =>
        runSample(['migrate'], {
          env: { DATABASE_URL: `postgres://app:pw-silent-9f3k@127.0.0.1:${silent.port}/app` },
        }),
      );
      tally.faults++;
      expect(result.timedOut).toBe(false);
      expect(result.code).toBe(1);
      // The command's default 5 s connect limit.
      expect(result.durationMs).toBeLessThan(startup + 5_000 + MARGIN_MS);
      expect(lines(result.stderr)).toEqual([
        // The command's 5 s limit, or the driver's connect timeout (the same 5 s) if it fires first.
        expect.stringMatching(
          /^Cannot migrate: database unreachable: .*(no answer within 5 s|connection timeout)$/,
        ),
      ]);
    } finally {
      await silent.close();
    }
  });
});

// The file's summary for the report. Each test asserts its own fault was injected and nothing
// was wrongly recorded, so this holds no assertion and does not depend on which tests ran.
afterAll(() => {
  console.log(
    `migrations under faults: ${tally.faults} faults injected, ${tally.wronglyRecorded} migrations wrongly recorded`,
  );
});
