import { DataSource } from 'typeorm';
import type { QueryRunner } from 'typeorm';
import { describe, expect, it } from 'vitest';
import { MigrationFailedError } from '../errors/migration.errors.js';
import { runMigrationsLocked } from './migrate.js';

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
