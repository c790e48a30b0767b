import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { MemcacheClient, MemcacheConnection, MemcacheNode } from 'memcache-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemcachedMemberError, MemcachedProtocolError } from '../../errors/memcached.errors.js';
import { flagsFor, TYPE_STRING } from './key-check.js';
import { MemberConnection } from './member-connection.js';

const servers: Server[] = [];
const connections: MemberConnection[] = [];

/** A loopback server answering each received line with `reply(line)`. */
async function serve(reply: (line: string) => string): Promise<{ host: string; port: number }> {
  const server = createServer((socket: Socket) => {
    let pending = '';
    socket.on('data', (chunk) => {
      pending += chunk.toString('latin1');
      let end: number;
      while ((end = pending.indexOf('\r\n')) >= 0) {
        const line = pending.slice(0, end);
        pending = pending.slice(end + 2);
        if (/^(set|add) /.test(line)) {
          const bytes = Number(line.split(' ')[4]);
          pending = pending.slice(bytes + 2);
        }
        socket.write(reply(line));
      }
    });
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { host: '127.0.0.1', port: (server.address() as AddressInfo).port };
}

function connect(member: { host: string; port: number }): MemberConnection {
  const connection = new MemberConnection(member, {
    connectTimeout: 1000,
    commandTimeout: 1000,
    maxConnections: 1,
    noDelay: true,
    maxValueSize: 1000,
  });
  connections.push(connection);
  return connection;
}

afterEach(() => {
  while (connections.length > 0) connections.pop()!.close();
  while (servers.length > 0) servers.pop()!.close();
  vi.restoreAllMocks();
});

describe('MemberConnection on memcache-client 1.0.5', () => {
  it('runs on exactly the memcache-client version whose internals it uses', () => {
    const require = createRequire(import.meta.url);
    const manifest = require.resolve('memcache-client/package.json');
    expect(JSON.parse(readFileSync(manifest, 'utf8')).version).toBe('1.0.5');
  });

  it('finds every internal it relies on (fails loudly when memcache-client changes them)', () => {
    const client = new MemcacheClient({ server: '127.0.0.1:1' });
    const servers = (client as unknown as { _servers: { doCmd: unknown } })._servers;
    expect(typeof servers.doCmd).toBe('function');
    for (const method of [
      'queueCommand',
      'dequeueCommand',
      'peekCommand',
      'isShutdown',
      '_shutdown',
    ]) {
      expect(
        typeof (MemcacheConnection.prototype as unknown as Record<string, unknown>)[method],
      ).toBe('function');
    }
    expect(typeof MemcacheNode.prototype.doCmd).toBe('function');
    client.shutdown();
  });

  it('reads replies with our parser: values, statuses, stats', async () => {
    const key = 'k1';
    const member = await serve((line) => {
      if (line.startsWith('get'))
        return `VALUE ${key} ${flagsFor(key, TYPE_STRING)} 2\r\nhi\r\nEND\r\n`;
      if (line.startsWith('set')) return 'STORED\r\n';
      if (line.startsWith('delete')) return 'NOT_FOUND\r\n';
      return 'STAT uptime 9\r\nEND\r\n';
    });
    const connection = connect(member);
    expect(await connection.get(key)).toBe('hi');
    expect(await connection.store('set', key, 'hi', 0)).toBe('STORED');
    expect(await connection.delete(key)).toBe(false);
    expect(await connection.stats()).toEqual([['uptime', '9']]);
  });

  it('turns a reply memcache-client would print or throw on into a protocol error of the member', async () => {
    const log = vi.spyOn(console, 'log');
    const member = await serve(() => 'constructor\r\n');
    const connection = connect(member);
    const failures = await Promise.all([
      connection.get('a').catch((error: unknown) => error),
      connection.get('b').catch((error: unknown) => error),
    ]);
    for (const failure of failures) expect(failure).toBeInstanceOf(MemcachedProtocolError);
    expect(connection.protocolErrors).toBe(1);
    expect(log).not.toHaveBeenCalled();
  });

  it('fails a command with a member error when nothing listens', async () => {
    const member = await serve(() => '');
    servers.pop()!.close();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await expect(connect(member).get('a')).rejects.toBeInstanceOf(MemcachedMemberError);
  });
});
