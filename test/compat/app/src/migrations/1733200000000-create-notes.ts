import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateNotes1733200000000 implements MigrationInterface {
  name = 'CreateNotes1733200000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      'CREATE TABLE compat_notes (id SERIAL PRIMARY KEY, text TEXT NOT NULL)',
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE compat_notes');
  }
}
