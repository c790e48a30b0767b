// The real services a compat app runs against: three memcached members on loopback and a fresh
// PostgreSQL database. The app is the documentation's, whose `CACHE_HOST` takes the members as a
// comma list of `host:port` (it sets no `dnsServers`, so a DNS server on loopback cannot reach it:
// DNS discovery is the e2e suite's, on real DNS servers).
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { once } from 'node:events';
import pg from 'pg';
import { memcachedImplementation, startMember } from '../../scripts/demo/members.js';

export const POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432';

/** What is missing to run the matrix, or an empty list. */
export async function missingServices() {
  const missing = [];
  if (memcachedImplementation({ embedded: false }).kind !== 'binary') {
    missing.push('memcached (install it: apt-get install memcached)');
  }
  try {
    await withPostgres('postgres', () => undefined);
  } catch (error) {
    missing.push(`PostgreSQL at 127.0.0.1:5432 (${error.message})`);
  }
  return missing;
}

async function withPostgres(database, use) {
  const client = new pg.Client({
    connectionString: `${POSTGRES_URL}/${database}`,
    connectionTimeoutMillis: 3_000,
  });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/** A fresh database: its URL and how to drop it. */
export async function createDatabase() {
  const name = `k8s_compat_${randomBytes(5).toString('hex')}`;
  await withPostgres('postgres', (client) => client.query(`CREATE DATABASE ${name}`));
  return {
    url: `${POSTGRES_URL}/${name}`,
    /** Runs one statement in it. */
    query: (sql, params) => withPostgres(name, (client) => client.query(sql, params)),
    /** The tables in its public schema, sorted. */
    tables: () =>
      withPostgres(name, async (client) =>
        (
          await client.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
          )
        ).rows.map((row) => row.table_name),
      ),
    drop: () =>
      withPostgres('postgres', (client) =>
        client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
      ),
  };
}

/**
 * Three memcached members on 127.0.<subnet>.1-3, all on one port (as pods behind a headless
 * Service are). Returns their hosts, port, sorted `host:port` list and processes.
 */
export async function startMembers(processes, subnet) {
  const implementation = memcachedImplementation({ embedded: false });
  const hosts = [1, 2, 3].map((i) => `127.0.${subnet}.${i}`);
  // A port free on every address: a bounded number of tries.
  for (let attempt = 0; attempt < 10; attempt++) {
    const port = await freeOnAll(hosts);
    if (port === undefined) continue;
    const children = [];
    for (const [i, host] of hosts.entries()) {
      children.push(await startMember(processes, implementation, `member ${i + 1}`, host, port));
    }
    return { hosts, port, servers: hosts.map((host) => `${host}:${port}`).sort(), children };
  }
  throw new Error(`no port free on all of ${hosts.join(', ')} after 10 tries`);
}

async function freeOnAll(hosts) {
  const first = await listen(hosts[0], 0);
  const { port } = first.address();
  const servers = [first];
  try {
    for (const host of hosts.slice(1)) servers.push(await listen(host, port));
    return port;
  } catch {
    return undefined;
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

async function listen(host, port) {
  const server = createServer();
  server.listen(port, host);
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([e]) => Promise.reject(e)),
  ]);
  return server;
}
