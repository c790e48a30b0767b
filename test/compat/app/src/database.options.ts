import type { DataSourceOptions } from 'typeorm';
import { Note } from './note.entity.js';
import { CreateNotes1733200000000 } from './migrations/1733200000000-create-notes.js';

/** One place for the database options: the app's TypeOrmModule and the migration commands. */
export function databaseOptions(): DataSourceOptions {
  return {
    type: 'postgres',
    url: process.env.DATABASE_URL,
    entities: [Note],
    migrations: [CreateNotes1733200000000],
  };
}
