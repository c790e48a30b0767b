import { DataSource } from 'typeorm';
import type { QueryRunner } from 'typeorm';
import { describe, expect, it } from 'vitest';
import {
  EXPECTED_TYPEORM_COPY,
  TYPEORM_LINE,
  loadedTypeormCopies,
} from '../../test/support/typeorm-line.js';
import { MigrationFailedError, MigrationUsageError } from '../errors/migration.errors.js';
import {
  DEFAULT_INTERVAL_SECONDS,
  DEFAULT_TIMEOUT_SECONDS,
  MAX_SECONDS,
  commandOf,
  misplacedCommand,
  parseCommandArgs,
} from './command-args.js';
import { executeK8sCommand } from './execute-command.js';
import { maskCredentials, secretsOf } from './mask-credentials.js';
import { runMigrationsLocked } from './migrate.js';
import { checkMigrations, classifyError, describeDataSource } from './migration-check.js';
import { postgresLockKey } from './migration-lock.js';

describe('parseCommandArgs', () => {
  it('reads checkmigrations options in both spellings, with documented defaults', () => {
    expect(parseCommandArgs(['checkmigrations'])).toEqual({
      command: 'checkmigrations',
      help: false,
      wait: false,
      timeout: DEFAULT_TIMEOUT_SECONDS,
      interval: DEFAULT_INTERVAL_SECONDS,
    });
    expect(
      parseCommandArgs(['checkmigrations', '--wait', '--timeout', '0', '--interval=0.5']),
    ).toMatchObject({
      wait: true,
      timeout: 0,
      interval: 0.5,
    });
    expect(parseCommandArgs(['migrate', '--timeout=12'])).toEqual({
      command: 'migrate',
      help: false,
      timeout: 12,
    });
  });

  it.each([
    [['checkmigrations', '--wiat']],
    [['checkmigrations', 'extra']],
    [['checkmigrations', '--timeout']],
    [['checkmigrations', '--timeout', '-1']],
    [['checkmigrations', '--timeout', 'soon']],
    [['checkmigrations', '--interval', '0']],
    [['checkmigrations', '--wait=yes']],
    [['migrate', '--wait']],
    // Node's timers overflow above 2^31-1 ms and would fire at once.
    [['checkmigrations', '--timeout', '2147484']],
    [['checkmigrations', '--interval', '3000000']],
    [['migrate', '--timeout=1e9']],
    // Repeated options: which one wins would be a guess.
    [['checkmigrations', '--wait', '--wait']],
    [['checkmigrations', '--timeout', '1', '--timeout=2']],
    [['migrate', '--help', '--help']],
    // Number() would take these: only plain decimals are seconds.
    [['checkmigrations', '--timeout', '0x10']],
    [['checkmigrations', '--timeout', '1e1']],
    [['checkmigrations', '--timeout', ' 5']],
    [['checkmigrations', '--interval=.5']],
    [['migrate', '--timeout', '5 ']],
  ])('rejects %j with one line that holds the synopsis', (argv) => {
    expect(() => parseCommandArgs(argv)).toThrow(MigrationUsageError);
    expect(() => parseCommandArgs(argv)).toThrow(
      /^(checkmigrations|migrate): [^\n]+ Usage: \1 \[[^\n]+; see "\1 --help"\.$/,
    );
  });

  it('accepts plain decimals, and skips a leading --', () => {
    expect(
      parseCommandArgs(['--', 'checkmigrations', '--timeout', '07', '--interval', '0.25']),
    ).toMatchObject({ command: 'checkmigrations', timeout: 7, interval: 0.25 });
  });

  it('accepts the largest timer-safe number of seconds', () => {
    expect(
      parseCommandArgs([
        'checkmigrations',
        '--timeout',
        String(MAX_SECONDS),
        '--interval',
        '2147483',
      ]),
    ).toMatchObject({ timeout: MAX_SECONDS, interval: MAX_SECONDS });
  });

  it('recognises a command only as the first argument, after an optional --', () => {
    expect(commandOf(['migrate'])).toBe('migrate');
    expect(commandOf(['--', 'checkmigrations', '--wait'])).toBe('checkmigrations');
    expect(commandOf(['--port', 'migrate'])).toBeUndefined();
    expect(commandOf([])).toBeUndefined();
  });

  it.each([
    [['--wait', 'checkmigrations'], 'checkmigrations'],
    [['--port', 'migrate'], 'migrate'],
    [['CheckMigrations'], 'checkmigrations'],
    [['--', '--', 'checkmigrations'], 'checkmigrations'],
    [['--wait'], 'checkmigrations'],
    [['--interval=5'], 'checkmigrations'],
    [['serve', 'MIGRATE'], 'migrate'],
  ])('calls %j a misplaced command (a usage error, not an app start)', (argv, command) => {
    const line = misplacedCommand(argv);
    expect(line).toMatch(new RegExp(`^${command}: the command must be the first argument`));
    expect(line).not.toContain('\n');
  });

  it.each([
    [[]],
    [['--port', '3000']],
    [['serve']],
    [['checkmigrations', '--wait']],
    [['--', 'migrate']],
  ])('leaves %j alone', (argv) => {
    expect(misplacedCommand(argv)).toBeUndefined();
  });
});

describe('maskCredentials', () => {
  it('hides URL passwords and known secrets, plain and URL-encoded', () => {
    const url = 'postgres://app:p%40ssw0rd@db:5432/app';
    const secrets = secretsOf({
      type: 'postgres',
      url,
      replication: { master: { password: 'm4ster1' } },
    });
    expect(secrets.sort()).toEqual(['m4ster1', 'p@ssw0rd']);
    expect(maskCredentials(`cannot reach ${url} (p@ssw0rd, m4ster1)`, secrets)).toBe(
      'cannot reach postgres://app:***@db:5432/app (***, ***)',
    );
  });
});

describe('maskCredentials on unencoded passwords', () => {
  it.each([
    ['postgres://u:p@ss@host/db', 'postgres://u:***@host/db'],
    ['mysql://u:a:b/c#d@host:3306/db is down', 'mysql://u:***@host:3306/db is down'],
    ['at postgres://u:s3cr3t@db.local', 'at postgres://u:***@db.local'],
    [
      'two: postgres://a:x@h1/d and mysql://b:y@h2/e',
      'two: postgres://a:***@h1/d and mysql://b:***@h2/e',
    ],
  ])('masks up to the last @ of the authority: %s', (text, masked) => {
    expect(maskCredentials(text)).toBe(masked);
  });

  it('masks a secret only as a whole token, never a short one, never one equal to the user', () => {
    // Short: masking "x" everywhere garbles the text and shows where the password's letters are.
    expect(maskCredentials('Connection terminated unexpectedly', ['x'])).toBe(
      'Connection terminated unexpectedly',
    );
    expect(maskCredentials('bad s3cr3tpw! and mys3cr3tpw', ['s3cr3tpw'])).toBe(
      'bad ***! and mys3cr3tpw',
    );
    const same = secretsOf({ type: 'mysql', username: 'rvsame', password: 'rvsame' });
    expect(same).toEqual([]);
    expect(maskCredentials("Access denied for user 'rvsame'@'%'", same)).toBe(
      "Access denied for user 'rvsame'@'%'",
    );
    expect(secretsOf({ type: 'postgres', url: 'postgres://rvsame:rvsame@db/app' })).toEqual([]);
    // The URL rule still hides short passwords inside URLs.
    expect(maskCredentials('at postgres://u:x@db/app')).toBe('at postgres://u:***@db/app');
  });

  it('masks a known secret with spaces and URL characters, plain and encoded', () => {
    const secret = 'P@w:/d#5% x';
    expect(maskCredentials(`bad ${secret} / ${encodeURIComponent(secret)}`, [secret])).toBe(
      'bad *** / ***',
    );
  });
});

describe('classifyError', () => {
  const coded = (code: string): Error => Object.assign(new Error('x'), { code });

  it('tells what waiting cannot fix from what it may', () => {
    expect(classifyError(coded('28P01'))).toBe('authentication');
    expect(classifyError(coded('ER_ACCESS_DENIED_ERROR'))).toBe('authentication');
    expect(classifyError(coded('3D000'))).toBe('unknown-database');
    expect(classifyError(coded('ER_BAD_DB_ERROR'))).toBe('unknown-database');
    expect(classifyError(coded('ECONNREFUSED'))).toBe('unreachable');
    expect(classifyError(coded('42501'))).toBe('authentication');
    expect(classifyError(coded('ER_HOST_NOT_PRIVILEGED'))).toBe('authentication');
    expect(classifyError(coded('SELF_SIGNED_CERT_IN_CHAIN'))).toBe('configuration');
    expect(classifyError(coded('DEPTH_ZERO_SELF_SIGNED_CERT'))).toBe('configuration');
    expect(classifyError(coded('ERR_TLS_CERT_ALTNAME_INVALID'))).toBe('configuration');
    expect(classifyError(new Error('The server does not support SSL connections'))).toBe(
      'configuration',
    );
    expect(classifyError(new Error('Connection terminated unexpectedly'))).toBe('unreachable');
    for (const code of [
      'ER_TABLEACCESS_DENIED_ERROR',
      'ER_COLUMNACCESS_DENIED_ERROR',
      'ER_SPECIFIC_ACCESS_DENIED_ERROR',
    ]) {
      expect(classifyError(coded(code))).toBe('authentication');
    }
    // A TLS file that cannot be read is configuration; a Unix socket not there yet may appear.
    const fsError = (code: string, syscall: string): Error =>
      Object.assign(new Error(`${code}: ${syscall}`), { code, syscall });
    expect(classifyError(fsError('ENOENT', 'open'))).toBe('configuration');
    expect(classifyError(fsError('EACCES', 'open'))).toBe('configuration');
    expect(classifyError(fsError('ENOENT', 'connect'))).toBe('unreachable');
    // TypeORM's QueryFailedError carries the driver's error.
    expect(classifyError(Object.assign(new Error('q'), { driverError: coded('3D000') }))).toBe(
      'unknown-database',
    );
  });
});

describe('describeDataSource', () => {
  it('names a data source without its credentials', () => {
    expect(describeDataSource({ type: 'postgres', url: 'postgres://u:secret@db.local/app' })).toBe(
      'postgres db.local:5432/app',
    );
    expect(describeDataSource({ type: 'better-sqlite3', database: './x.sqlite' })).toBe(
      'better-sqlite3 ./x.sqlite',
    );
  });
});

describe('postgresLockKey', () => {
  it('is a stable signed 64-bit integer', () => {
    const key = postgresLockKey('nestjs-k8s:migrate:migrations');
    expect(key).toBe(postgresLockKey('nestjs-k8s:migrate:migrations'));
    expect(BigInt(key) >= -(2n ** 63n) && BigInt(key) < 2n ** 63n).toBe(true);
  });
});

describe('checkMigrations (from code, on a real in-memory SQLite)', () => {
  class CreateThings1700000000000 {
    async up(queryRunner: QueryRunner): Promise<void> {
      await queryRunner.query('CREATE TABLE thing (id INTEGER PRIMARY KEY)');
    }
    async down(): Promise<void> {}
  }

  it(`runs on TypeORM ${TYPEORM_LINE}, one copy for this spec and the library`, async () => {
    const dataSource = new DataSource({
      type: 'better-sqlite3',
      database: ':memory:',
      migrations: [CreateThings1700000000000],
    });
    await dataSource.initialize();
    try {
      // The library imports TypeORM itself to read the pending migrations.
      expect((await checkMigrations(dataSource)).ready).toBe(false);
    } finally {
      await dataSource.destroy();
    }
    const loaded = loadedTypeormCopies();
    console.log(`TypeORM loaded: ${loaded.join(', ')}`);
    expect(loaded).toEqual([expect.stringMatching(EXPECTED_TYPEORM_COPY)]);
  });

  it('reports pending names without creating the migrations table, then ready after migrating', async () => {
    const dataSource = new DataSource({
      type: 'better-sqlite3',
      database: ':memory:',
      migrations: [CreateThings1700000000000],
    });
    expect((await checkMigrations(dataSource)).dataSources[0]).toMatchObject({
      reachable: false,
      problem: 'unreachable',
    });
    await dataSource.initialize();
    try {
      expect(await checkMigrations([dataSource])).toEqual({
        ready: false,
        dataSources: [
          {
            name: 'better-sqlite3 :memory:',
            reachable: true,
            pending: ['CreateThings1700000000000'],
          },
        ],
      });
      expect(await dataSource.createQueryRunner().hasTable('migrations')).toBe(false);
      expect(await runMigrationsLocked(dataSource, { timeoutMs: 1_000 })).toEqual([
        'CreateThings1700000000000',
      ]);
      expect((await checkMigrations(dataSource)).ready).toBe(true);
    } finally {
      await dataSource.destroy();
    }
  });
});

describe('runMigrationsLocked with a failing migration (real in-memory SQLite)', () => {
  class First1700000000001 {
    async up(queryRunner: QueryRunner): Promise<void> {
      await queryRunner.query('CREATE TABLE first_table (id INTEGER PRIMARY KEY)');
    }
    async down(): Promise<void> {}
  }
  class Boom1700000000002 {
    async up(): Promise<void> {
      throw new TypeError('boom');
    }
    async down(): Promise<void> {}
  }

  it.each([
    ['all', []],
    ['each', ['First1700000000001']],
  ] as const)('names the failed one and what ran before it (mode %s)', async (mode, kept) => {
    const dataSource = new DataSource({
      type: 'better-sqlite3',
      database: ':memory:',
      migrationsTransactionMode: mode,
      logging: false,
      migrations: [First1700000000001, Boom1700000000002],
    });
    await dataSource.initialize();
    try {
      const error: unknown = await runMigrationsLocked(dataSource, { timeoutMs: 1_000 }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(MigrationFailedError);
      expect(error).toMatchObject({
        migration: 'Boom1700000000002',
        ranBefore: ['First1700000000001'],
        kept,
        cause: expect.objectContaining({ message: 'boom' }),
      });
    } finally {
      await dataSource.destroy();
    }
  });
});

describe('executeK8sCommand (in process)', () => {
  const capture = (): {
    out: string[];
    err: string[];
    io: { out(l: string): void; err(l: string): void };
  } => {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, io: { out: (l) => out.push(l), err: (l) => err.push(l) } };
  };

  it('refuses an empty list of data sources with exit 2', async () => {
    const { err, io } = capture();
    expect(await executeK8sCommand(['checkmigrations'], { dataSources: () => [] }, { io })).toBe(2);
    expect(err).toEqual(['checkmigrations: configuration error: no data source is configured']);
  });

  it('migrate on a port that refuses is exit 1 with one line', async () => {
    const { err, io } = capture();
    const code = await executeK8sCommand(
      ['migrate'],
      {
        dataSources: () =>
          ({
            type: 'postgres',
            host: '127.0.0.1',
            port: 1,
            migrations: ['x.js'],
          }) as never,
      },
      { io },
    );
    expect(code).toBe(1);
    expect(err[0]).toMatch(/^Cannot migrate: database unreachable: postgres 127\.0\.0\.1:1\//);
  });

  it('reports an abort while the factory runs as 128 + the signal number', async () => {
    const { err, io } = capture();
    const controller = new AbortController();
    const code = executeK8sCommand(
      ['checkmigrations'],
      { dataSources: () => new Promise(() => undefined) },
      { io, signal: controller.signal },
    );
    controller.abort('SIGINT');
    expect(await code).toBe(130);
    expect(err).toEqual(['Interrupted by SIGINT while reading the data source options']);
  });
});
