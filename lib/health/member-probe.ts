import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions } from 'node:tls';

/** `host` and `port` of a member id as `memberId` writes it (`10.0.0.5:11211`, `[::1]:11211`). */
export function parseMemberId(id: string): { host: string; port: number } {
  const bracketed = /^\[(.+)\]:(\d+)$/.exec(id);
  if (bracketed) return { host: bracketed[1], port: Number(bracketed[2]) };
  const colon = id.lastIndexOf(':');
  return { host: id.slice(0, colon), port: Number(id.slice(colon + 1)) };
}

/**
 * Ask one memcached member for its `version` on a connection of its own (over TLS with the
 * pool's `tls` options), bounded by `timeout` ms. Resolves to whether it answered like a
 * memcached; never rejects. Its own connection, not the pool's: a health check must neither
 * queue behind traffic nor count towards ejection.
 */
export function probeMember(
  id: string,
  timeout: number,
  tls?: ConnectionOptions,
): Promise<boolean> {
  const { host, port } = parseMemberId(id);
  return new Promise<boolean>((resolve) => {
    let reply = '';
    // As the pool connects: certificates checked against the member IP or `tls.servername`.
    const socket = tls ? tlsConnect({ ...tls, host, port }) : connect({ host, port });
    const finish = (answered: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answered);
    };
    const timer = setTimeout(() => finish(false), timeout);
    socket.setNoDelay(true);
    socket.once(tls ? 'secureConnect' : 'connect', () => socket.write('version\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) finish(reply.startsWith('VERSION '));
    });
    socket.once('error', () => finish(false));
    socket.once('close', () => finish(false));
  });
}
