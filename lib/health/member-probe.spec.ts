import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { closedPort } from '../../test/support/tcp-proxy.js';
import { parseMemberId, probeMember } from './member-probe.js';

describe('parseMemberId', () => {
  it('reads IPv4, bracketed IPv6 and name ids as memberId writes them', () => {
    expect(parseMemberId('10.0.0.5:11211')).toEqual({ host: '10.0.0.5', port: 11211 });
    expect(parseMemberId('[fd00::1]:11212')).toEqual({ host: 'fd00::1', port: 11212 });
    expect(parseMemberId('cache-0.cache:11211')).toEqual({ host: 'cache-0.cache', port: 11211 });
  });
});

describe('probeMember', () => {
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  afterEach(async () => {
    for (const socket of sockets) socket.destroy();
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  /** A loopback server that answers each connection's first line with `reply` (or never). */
  async function server(reply: string | undefined): Promise<string> {
    const s = createServer((socket) => {
      sockets.add(socket);
      socket.once('data', () => {
        if (reply !== undefined) socket.write(reply);
      });
    });
    servers.push(s);
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    return `127.0.0.1:${(s.address() as { port: number }).port}`;
  }

  it('is true only for a memcached VERSION line', async () => {
    expect(await probeMember(await server('VERSION 1.6.21\r\n'), 1000)).toBe(true);
    expect(await probeMember(await server('ERROR\r\n'), 1000)).toBe(false);
  });

  it('is false, never rejecting, for a refused connection and a silent server', async () => {
    expect(await probeMember(`127.0.0.1:${await closedPort()}`, 1000)).toBe(false);
    expect(await probeMember(await server(undefined), 100)).toBe(false);
  });
});
