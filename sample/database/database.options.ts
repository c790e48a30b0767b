import type { DataSourceOptions } from 'typeorm';
import { Item } from './item.entity.js';
import { CreateItems1732540000000 } from './migrations/1732540000000-create-items.js';
import { AddItemPrice1732540100000 } from './migrations/1732540100000-add-item-price.js';

/** The SQLite file the sample uses when `DATABASE_URL` is unset, so it runs with no server. */
export const DEFAULT_DATABASE_URL = './sample.sqlite';

/**
 * The one place the sample's database options come from, shared by the app
 * (`TypeOrmModule.forRootAsync`) and the `checkmigrations`/`migrate` commands.
 * `DATABASE_URL`: `postgres://…`, `mysql://…`, `mariadb://…`, or a SQLite file path.
 * Migrations are listed by class (not a glob), so `nest start` and `node dist/…` load the same.
 */
export function databaseOptions(
  url = process.env.DATABASE_URL || DEFAULT_DATABASE_URL,
): DataSourceOptions {
  const common = {
    entities: [Item],
    migrations: [CreateItems1732540000000, AddItemPrice1732540100000],
  };
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  switch (scheme) {
    case undefined:
      return { type: 'better-sqlite3', database: url, ...common };
    case 'postgres':
    case 'postgresql':
      return { type: 'postgres', url, ...common };
    case 'mysql':
      return { type: 'mysql', url, ...common };
    case 'mariadb':
      return { type: 'mariadb', url, ...common };
    default:
      throw new Error(
        `DATABASE_URL has an unsupported scheme "${scheme}:"; use postgres://, mysql://, mariadb:// or a SQLite file path.`,
      );
  }
}
