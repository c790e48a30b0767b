import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';

/** A loopback TCP proxy that refuses connections until it is told to forward them. */
export interface TcpProxy {
  /** The port it listens on (on `listenHost`). */
  port: number;
  /** From now on, forward new connections to the target. */
  forward(): void;
  /**
   * The database goes away: every open connection is destroyed and new ones are closed at
   * once, until {@link TcpProxy.forward}. Returns the number of connections cut.
   */
  cut(): number;
  /** Connections accepted so far, forwarded or closed at once (each is a client's attempt). */
  connections(): number;
  close(): Promise<void>;
}

/**
 * Start a proxy to `target` on a free port of `listenHost` (127.0.0.1, or `::1` to test IPv6
 * URLs against a server that listens on IPv4 only). Until {@link TcpProxy.forward} (or
 * `forwardAfterMs`), each connection is closed at once, as a database that is not up yet
 * would; the port stays ours all along so nothing else can take it.
 */
export async function startTcpProxy(
  target: { host: string; port: number },
  {
    forwardAfterMs,
    listenHost = '127.0.0.1',
  }: { forwardAfterMs?: number; listenHost?: string } = {},
): Promise<TcpProxy> {
  let forwarding = false;
  let accepted = 0;
  const sockets = new Set<Socket>();
  /** Client-side sockets of forwarded connections (one per database session). */
  const sessions = new Set<Socket>();
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const server = createServer((client) => {
    accepted++;
    track(client);
    if (!forwarding) {
      client.destroy();
      return;
    }
    const upstream = connect(target.port, target.host);
    track(upstream);
    sessions.add(client);
    client.on('close', () => sessions.delete(client));
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, listenHost, resolve);
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
    cut: () => {
      forwarding = false;
      const cut = sessions.size;
      for (const socket of sockets) socket.destroy();
      return cut;
    },
    connections: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        clearTimeout(timer);
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * A loopback port that refuses connections: port 1 (tcpmux), which no test or service here
 * listens on. Unlike a port asked from the OS and released, no parallel test can take it.
 */
export async function closedPort(): Promise<number> {
  const port = 1;
  const refused = await new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
  if (!refused)
    throw new Error(`something listens on 127.0.0.1:${port}; these tests need it closed`);
  return port;
}

/** A server on 127.0.0.1 that accepts connections and never says a word: a hung database. */
export interface SilentServer {
  port: number;
  /** Connections accepted so far. */
  connections(): number;
  /** Resolves once at least `count` connections were accepted. */
  waitForConnections(count: number): Promise<void>;
  close(): Promise<void>;
}

export async function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const waiters: { count: number; resolve: () => void }[] = [];
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    for (const waiter of waiters.filter((w) => accepted >= w.count)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: (server.address() as { port: number }).port,
    connections: () => accepted,
    waitForConnections: (count) =>
      accepted >= count
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiters.push({ count, resolve })),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
