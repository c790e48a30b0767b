import { fileURLToPath } from 'node:url';
import type { DataSourceOptions } from 'typeorm';
import { Item } from './item.entity.js';
import { CreateItems1732540000000 } from './migrations/1732540000000-create-items.js';
import { AddItemPrice1732540100000 } from './migrations/1732540100000-add-item-price.js';

/** The SQLite file the sample uses when `DATABASE_URL` is unset, so it runs with no server. */
export const DEFAULT_DATABASE_URL = './sample.sqlite';

/**
 * The one place the sample's database options come from, shared by the app
 * (`TypeOrmModule.forRootAsync`) and the `checkmigrations`/`migrate` commands.
 * `DATABASE_URL`: `postgres://…`, `mysql://…`, `mariadb://…`, or a SQLite file (a path, or
 * `sqlite:`/`file:` followed by one). Anything else that starts with a scheme is refused, so a
 * mistyped URL never becomes a SQLite file. Migrations are listed by class (not a glob), so
 * `nest start` and `node dist/…` load the same. Errors never include the URL (it holds the
 * password).
 */
export function databaseOptions(
  url = process.env.DATABASE_URL || DEFAULT_DATABASE_URL,
): DataSourceOptions {
  const common = {
    entities: [Item],
    migrations: [CreateItems1732540000000, AddItemPrice1732540100000],
  };
  // A Windows drive letter (`C:\…`) is a path, not a scheme.
  const scheme = /^[a-z]:[\\/]/i.test(url)
    ? undefined
    : /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  switch (scheme) {
    case undefined:
      return { type: 'better-sqlite3', database: url, ...common };
    case 'sqlite':
    case 'file':
      return { type: 'better-sqlite3', database: sqlitePath(url, scheme), ...common };
    case 'postgres':
    case 'postgresql':
      // pg reads the URL itself (sslmode, sslcert, …); checked first so that a mistake is
      // named as DATABASE_URL's.
      parseServerUrl(url, scheme);
      return { type: 'postgres', url, ...common };
    case 'mysql':
    case 'mariadb':
      // Not `url`: TypeORM's own parser for these breaks IPv6 hosts and unencoded
      // characters and drops query parameters.
      return {
        type: scheme,
        ...mysqlOptions(parseServerUrl(url, scheme)),
        ...common,
      } as DataSourceOptions;
    default:
      throw new Error(
        `DATABASE_URL has an unsupported scheme "${scheme}:"; use postgres://, mysql://, mariadb://, or a SQLite file path.`,
      );
  }
}

/** The parts of a server URL, percent-decoded. */
interface ServerUrl {
  host: string;
  port?: number;
  username?: string;
  password?: string;
  database?: string;
  params: URLSearchParams;
}

function parseServerUrl(url: string, scheme: string): ServerUrl {
  const invalid = (why: string): Error =>
    new Error(
      `DATABASE_URL is not a valid ${scheme}:// URL (${why}); the form is ` +
        `${scheme}://user@host:port/database with ":" and the password after the user name, ` +
        'and special characters in both percent-encoded (e.g. / as %2F, @ as %40, % as %25).',
    );
  if (!url.toLowerCase().startsWith(`${scheme}://`)) throw invalid(`no "//" after "${scheme}:"`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid('it cannot be parsed');
  }
  if (!parsed.hostname) throw invalid('no host');
  // An unencoded "/", "?" or "#" in the password ends the host early, leaving an "@" or a
  // fragment behind: refused, rather than connecting to a "host" made of the user name.
  if (parsed.hash || /@/.test(parsed.pathname + parsed.search)) {
    throw invalid('"#", or "@" after the host');
  }
  const decode = (part: string, what: string): string | undefined => {
    try {
      return part ? decodeURIComponent(part) : undefined;
    } catch {
      throw invalid(`bad percent-encoding in the ${what}`);
    }
  };
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: parsed.port ? Number(parsed.port) : undefined,
    username: decode(parsed.username, 'user name'),
    password: decode(parsed.password, 'password'),
    database: decode(parsed.pathname.slice(1), 'database name'),
    params: parsed.searchParams,
  };
}

/** MySQL/MariaDB options from a parsed URL; `ssl` is the one query parameter understood. */
function mysqlOptions({ params, ...connection }: ServerUrl): Partial<DataSourceOptions> {
  let ssl: object | undefined;
  for (const [name, value] of params) {
    if (name !== 'ssl') {
      throw new Error(
        `DATABASE_URL has the query parameter "${name}", which the sample does not support for MySQL/MariaDB; the one it supports is ssl=true|false.`,
      );
    }
    if (!['true', 'false'].includes(value)) {
      throw new Error('DATABASE_URL: ssl must be true or false.');
    }
    // An empty object: TLS with the server's certificate verified against the system CAs.
    ssl = value === 'true' ? {} : undefined;
  }
  return { ...connection, ...(ssl ? { ssl } : {}) } as Partial<DataSourceOptions>;
}

/** The file named by `sqlite:PATH`, `sqlite:///abs/path`, `file:PATH` or `file:///abs/path`. */
function sqlitePath(url: string, scheme: string): string {
  const rest = url.slice(scheme.length + 1);
  if (!rest.startsWith('//')) return rest;
  try {
    return fileURLToPath(`file:${rest}`);
  } catch {
    throw new Error(
      `DATABASE_URL is not a valid ${scheme}: URL; write ${scheme}:///absolute/path or ${scheme}:relative/path.`,
    );
  }
}
