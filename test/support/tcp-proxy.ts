import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';

/** A loopback TCP proxy that refuses connections until it is told to forward them. */
export interface TcpProxy {
  /** The port it listens on, on 127.0.0.1. */
  port: number;
  /** From now on, forward new connections to the target. */
  forward(): void;
  close(): Promise<void>;
}

/**
 * Start a proxy to `target` on a free port of 127.0.0.1. Until {@link TcpProxy.forward} (or
 * `forwardAfterMs`), each connection is closed at once, as a database that is not up yet
 * would; the port stays ours all along so nothing else can take it.
 */
export async function startTcpProxy(
  target: { host: string; port: number },
  { forwardAfterMs }: { forwardAfterMs?: number } = {},
): Promise<TcpProxy> {
  let forwarding = false;
  const sockets = new Set<Socket>();
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const server = createServer((client) => {
    track(client);
    if (!forwarding) {
      client.destroy();
      return;
    }
    const upstream = connect(target.port, target.host);
    track(upstream);
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const timer =
    forwardAfterMs === undefined
      ? undefined
      : setTimeout(() => (forwarding = true), forwardAfterMs);
  return {
    port: (server.address() as { port: number }).port,
    forward: () => {
      forwarding = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        clearTimeout(timer);
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port nothing listens on (asked from the OS, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
