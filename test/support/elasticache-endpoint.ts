import { once } from 'node:events';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { TlsOptions } from 'node:tls';

/** One node as the configuration lists it: `host|ip|port` (`ip` left out: `host||port`). */
export interface ConfigNode {
  readonly host: string;
  readonly ip?: string;
  readonly port: number;
}

/** How the endpoint answers a configuration request. */
export type EndpointBehaviour =
  /** The configuration in AWS's documented format. */
  | { readonly kind: 'answer' }
  /** Accepts and reads, never answers (a hung node). */
  | { readonly kind: 'silent' }
  /** These bytes instead of the configuration; then the connection closes if `close`. */
  | { readonly kind: 'raw'; readonly bytes: string | Buffer; readonly close?: boolean }
  /** The configuration cut after `bytes` bytes, then the connection closes. */
  | { readonly kind: 'truncated'; readonly bytes: number };

/**
 * An ElastiCache configuration endpoint for tests: a memcached-protocol server on loopback that
 * answers `config get cluster` (and `get AmazonElastiCache:cluster`) with a configuration the
 * test sets, framed exactly as AWS's ElastiCache guide documents it ("Adding Auto Discovery to
 * your Memcached client library"). Any other command answers `ERROR`, as memcached does. The
 * nodes it lists are real memcached processes the test started.
 *
 * ```ts
 * const endpoint = await startConfigEndpoint({ host: '127.0.6.1' });
 * endpoint.setNodes(servers.map((s) => ({ host: s.host, ip: s.host, port: s.port }))); // version 1
 * endpoint.setNodes([...]);              // version 2
 * endpoint.setVersion(1);                // a version that goes back, same nodes
 * endpoint.behave({ kind: 'silent' });   // accepts, never answers
 * endpoint.legacyEngine(true);           // ERROR to `config get cluster` (engine < 1.4.14)
 * await endpoint.down(); await endpoint.up();
 * ```
 */
export interface TestConfigEndpoint {
  readonly host: string;
  readonly port: number;
  /** `host:port`, the form `cache.host` takes. */
  readonly address: string;
  /** The configuration version now answered. */
  readonly version: number;
  /** Answer these nodes under the next version (or `version`, when given). */
  setNodes(nodes: readonly ConfigNode[], version?: number): void;
  /** Answer the current nodes under `version` (e.g. one that goes back). */
  setVersion(version: number): void;
  /** How to answer from now on (connections already waiting keep what they got). */
  behave(behaviour: EndpointBehaviour): void;
  /** Answer `ERROR` to `config get cluster`, as engines before 1.4.14 do. */
  legacyEngine(legacy: boolean): void;
  /** The exact reply to `command` now (what `answer` sends). */
  reply(command: 'config' | 'get'): Buffer;
  /** Requests received, by command (`config get cluster`, `get AmazonElastiCache:cluster`, other). */
  requests(command?: 'config' | 'get' | 'other'): number;
  /** Stop listening and drop open connections (connections are refused) until `up()`. */
  down(): Promise<void>;
  /** Listen again on the same port (nothing happens if it listens). */
  up(): Promise<void>;
  close(): Promise<void>;
}

/** Options of `startConfigEndpoint`. */
export interface ConfigEndpointOptions {
  /** Loopback address to listen on. */
  readonly host: string;
  /** Port to listen on (every node of a cluster serves the same one). @default a free port */
  readonly port?: number;
  /** Serve TLS with these options (`key`, `cert`). @default plaintext */
  readonly tls?: TlsOptions;
  /**
   * The configuration commands it knows; others answer `ERROR`, as memcached does. A Memorystore
   * discovery endpoint knows only `config`. @default ['config', 'get'] (ElastiCache)
   */
  readonly commands?: ReadonlyArray<'config' | 'get'>;
}

const REQUESTS = {
  'config get cluster': 'config',
  'get AmazonElastiCache:cluster': 'get',
} as const;

/** Start a configuration endpoint on a free port of `options.host`. */
export async function startConfigEndpoint(
  options: ConfigEndpointOptions,
): Promise<TestConfigEndpoint> {
  let nodes: readonly ConfigNode[] = [];
  let version = 0;
  let behaviour: EndpointBehaviour = { kind: 'answer' };
  let legacy = false;
  const known = options.commands ?? ['config', 'get'];
  const counts = { config: 0, get: 0, other: 0 };
  const sockets = new Set<Socket>();

  const reply = (command: 'config' | 'get'): Buffer => {
    const entries = nodes.map((n) => `${n.host}|${n.ip ?? ''}|${n.port}`).join(' ');
    const data = Buffer.from(`${version}\n${entries}\n`);
    const header =
      command === 'config'
        ? `CONFIG cluster 0 ${data.length}`
        : `VALUE AmazonElastiCache:cluster 0 ${data.length}`;
    return Buffer.concat([Buffer.from(`${header}\r\n`), data, Buffer.from('\r\nEND\r\n')]);
  };

  const answer = (socket: Socket, line: string) => {
    const command = REQUESTS[line as keyof typeof REQUESTS];
    counts[command ?? 'other']++;
    if (command === undefined || !known.includes(command) || (command === 'config' && legacy)) {
      socket.write('ERROR\r\n');
      return;
    }
    const now = behaviour;
    if (now.kind === 'answer') socket.write(reply(command));
    else if (now.kind === 'raw') {
      socket.write(now.bytes);
      if (now.close) socket.end();
    } else if (now.kind === 'truncated') {
      socket.end(reply(command).subarray(0, now.bytes));
    }
  };

  const onConnection = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let end: number;
      while ((end = buffered.indexOf('\r\n')) !== -1) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        answer(socket, line);
      }
    });
  };

  let server: Server;
  let port = options.port ?? 0;
  const listen = async () => {
    server = options.tls ? createTlsServer(options.tls, onConnection) : createServer(onConnection);
    server.listen(port, options.host);
    await once(server, 'listening');
    port = (server.address() as { port: number }).port;
  };
  const stop = async () => {
    if (!server.listening) return;
    const closed = once(server, 'close');
    server.close();
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  await listen();

  return {
    host: options.host,
    get port() {
      return port;
    },
    get address() {
      return `${options.host}:${port}`;
    },
    get version() {
      return version;
    },
    setNodes(next, nextVersion) {
      nodes = [...next];
      version = nextVersion ?? version + 1;
    },
    setVersion(next) {
      version = next;
    },
    behave(next) {
      behaviour = next;
    },
    legacyEngine(next) {
      legacy = next;
    },
    reply,
    requests(command) {
      return command === undefined ? counts.config + counts.get + counts.other : counts[command];
    },
    down: stop,
    up: async () => {
      if (!server.listening) await listen();
    },
    close: stop,
  };
}
