import { DataSource } from 'typeorm';
import type { QueryRunner } from 'typeorm';
import { describe, expect, it } from 'vitest';
import { MigrationUsageError } from '../errors/migration.errors.js';
import {
  DEFAULT_INTERVAL_SECONDS,
  DEFAULT_TIMEOUT_SECONDS,
  commandOf,
  parseCommandArgs,
} from './command-args.js';
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
  ])('rejects %j with the usage', (argv) => {
    expect(() => parseCommandArgs(argv)).toThrow(MigrationUsageError);
    expect(() => parseCommandArgs(argv)).toThrow(/Usage: /);
  });

  it('recognises a command only as the first argument', () => {
    expect(commandOf(['migrate'])).toBe('migrate');
    expect(commandOf(['--port', 'migrate'])).toBeUndefined();
    expect(commandOf([])).toBeUndefined();
  });
});

describe('maskCredentials', () => {
  it('hides URL passwords and known secrets, plain and URL-encoded', () => {
    const url = 'postgres://app:p%40ss@db:5432/app';
    const secrets = secretsOf({
      type: 'postgres',
      url,
      replication: { master: { password: 'm4ster' } },
    });
    expect(secrets.sort()).toEqual(['m4ster', 'p@ss']);
    expect(maskCredentials(`cannot reach ${url} (p@ss, m4ster)`, secrets)).toBe(
      'cannot reach postgres://app:***@db:5432/app (***, ***)',
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
    expect(classifyError(new Error('Connection terminated unexpectedly'))).toBe('unreachable');
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
