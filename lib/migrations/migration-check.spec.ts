import { DataSource } from 'typeorm';
import type { QueryRunner } from 'typeorm';
import { describe, expect, it } from 'vitest';
import {
  EXPECTED_TYPEORM_COPY,
  TYPEORM_LINE,
  loadedTypeormCopies,
} from '../../test/support/typeorm-line.js';
import { runMigrationsLocked } from './migrate.js';
import { checkMigrations, classifyError, describeDataSource } from './migration-check.js';

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
