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

/**
 * A loopback server answering each received line with `reply(line)`. `speaksMeta`: it reads an
 * `ms` line's data as data (a member with the meta protocol); without, as a command.
 */
async function serve(
  reply: (line: string) => string,
  speaksMeta = false,
): Promise<{ host: string; port: number }> {
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
        if (/^ms /.test(line) && speaksMeta) {
          const bytes = Number(line.split(' ')[2]);
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

function connect(
  member: { host: string; port: number },
  protocol: 'auto' | 'text' = 'text',
  metaMultiGet = false,
): MemberConnection {
  const connection = new MemberConnection(member, {
    connectTimeout: 1000,
    commandTimeout: 1000,
    maxConnections: 1,
    noDelay: true,
    maxValueSize: 1000,
    protocol,
    metaMultiGet,
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

  describe('learning the protocol (protocol: auto)', () => {
    /** A member of `version` that answers `mn` with `noop` and each meta command with `meta`. */
    async function learning(
      version: string,
      noop: string,
      meta: (line: string) => string,
      metaMultiGet = false,
    ) {
      const lines: string[] = [];
      const key = 'k1';
      const member = await serve((line) => {
        lines.push(line.split(' ')[0]);
        if (line === 'version') return version;
        if (line === 'mn') return noop;
        if (/^m[gsd] /.test(line)) return meta(line);
        if (line.startsWith('get')) {
          return `VALUE ${key} ${flagsFor(key, TYPE_STRING)} 2\r\nhi\r\nEND\r\n`;
        }
        if (line.startsWith('set')) return 'STORED\r\n';
        return 'ERROR\r\n';
      }, noop === 'MN\r\n');
      return { connection: connect(member, 'auto', metaMultiGet), lines, key };
    }

    it('speaks meta commands to memcached 1.6.10 and later, after asking once', async () => {
      const { connection, lines, key } = await learning('VERSION 1.6.18\r\n', 'MN\r\n', (line) =>
        line.startsWith('mg') ? `VA 2 f${flagsFor(key, TYPE_STRING)}\r\nhi\r\n` : 'HD\r\n',
      );
      expect(connection.protocol).toBeUndefined();
      // Both wait for the answer, then go as meta commands.
      const [value, stored] = await Promise.all([
        connection.get(key),
        connection.store('set', key, 'hi', 0),
      ]);
      expect([value, stored]).toEqual(['hi', 'STORED']);
      expect(connection.protocol).toBe('meta');
      expect(lines).toEqual(['version', 'mn', 'mg', 'ms']);
    });

    it('sends a multi-get as one text get, or (metaMultiGet) as a quiet mg pipeline ended by mn', async () => {
      const replies = (line: string) =>
        line.startsWith('mg') ? '' : line === 'mn' ? 'MN\r\n' : 'HD\r\n';
      const plain = await learning('VERSION 1.6.18\r\n', 'MN\r\n', replies);
      expect(await plain.connection.getMany(['k1', 'k2'])).toEqual(['hi', undefined]);
      expect(plain.lines).toEqual(['version', 'mn', 'get']);
      const meta = await learning('VERSION 1.6.18\r\n', 'MN\r\n', replies, true);
      // The member answers the quiet mg lines with nothing (misses) and the closing mn with MN.
      expect(await meta.connection.getMany(['k1', 'k2'])).toEqual([undefined, undefined]);
      expect(meta.lines).toEqual(['version', 'mn', 'mg', 'mg', 'mn']);
    });

    it.each([
      ['1.6.9 (meta protocol not yet stable)', 'VERSION 1.6.9\r\n', 'MN\r\n'],
      ['1.5.16 (no meta protocol: ERROR to mn)', 'VERSION 1.5.16\r\n', 'ERROR\r\n'],
      ['a member without version (ERROR)', 'ERROR\r\n', 'ERROR\r\n'],
      ['a member that claims 1.6.18 but answers ERROR to mn', 'VERSION 1.6.18\r\n', 'ERROR\r\n'],
    ])('speaks text commands to %s', async (_, version, noop) => {
      const { connection, lines, key } = await learning(version, noop, () => 'ERROR\r\n');
      expect(await connection.get(key)).toBe('hi');
      expect(await connection.store('set', key, 'hi', 0)).toBe('STORED');
      expect(connection.protocol).toBe('text');
      expect(lines).toEqual(['version', 'mn', 'get', 'set']);
      expect(connection.protocolErrors).toBe(0);
    });

    it('falls back to text for good when a member answers a meta read with ERROR, and reads it again as text', async () => {
      const { connection, lines, key } = await learning(
        'VERSION 1.6.18\r\n',
        'MN\r\n',
        () => 'ERROR\r\n',
      );
      expect(await connection.get(key)).toBe('hi');
      expect(connection.protocol).toBe('text');
      const lease = await connection.lease(key, 3, 0);
      expect(lease).toMatchObject({ value: 'hi', leased: false, win: false });
      expect(lines).toEqual(['version', 'mn', 'mg', 'get', 'get']);
      expect(connection.protocolErrors).toBe(0);
    });

    it('speaks text without asking again to a member that closed the connection on version (a proxy)', async () => {
      const lines: string[] = [];
      const key = 'k1';
      const server = createServer((socket: Socket) => {
        socket.on('data', (chunk) => {
          for (const line of chunk.toString('latin1').split('\r\n').filter(Boolean)) {
            lines.push(line.split(' ')[0]);
            if (line === 'version') socket.destroy();
            else if (line.startsWith('get')) {
              socket.write(`VALUE ${key} ${flagsFor(key, TYPE_STRING)} 2\r\nhi\r\nEND\r\n`);
            }
          }
        });
      });
      servers.push(server);
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const connection = connect(
        { host: '127.0.0.1', port: (server.address() as AddressInfo).port },
        'auto',
      );
      await expect(connection.get(key)).rejects.toBeInstanceOf(MemcachedMemberError);
      expect(connection.protocol).toBe('text');
      expect(await connection.get(key)).toBe('hi');
      expect(lines.filter((line) => line === 'version')).toHaveLength(1);
    });

    it('fails the commands that waited when the member never answers what it speaks', async () => {
      const member = await serve(() => '');
      const connection = connect(member, 'auto');
      await expect(connection.get('a')).rejects.toBeInstanceOf(MemcachedMemberError);
      expect(connection.protocol).toBeUndefined();
    });
  });
});
