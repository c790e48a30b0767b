import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions } from 'node:tls';
import { ConfigEndpointError } from '../errors/discovery.errors.js';
import { CONFIG_REQUEST, readConfigReply } from './cluster-config.js';
import type { ClusterConfig, ConfigCommand } from './cluster-config.js';

/** A reply larger than this is not a cluster configuration (hundreds of nodes fit in 64 KiB). */
export const MAX_CONFIG_REPLY_BYTES = 256 * 1024;

/** How messages name a kind of configuration endpoint. */
export interface EndpointLabel {
  /** 'ElastiCache configuration endpoint', 'Memorystore discovery endpoint'. */
  readonly name: string;
  /** The same with its article, as in "it is not …": 'an ElastiCache configuration endpoint'. */
  readonly indefinite: string;
}

/** One question to one configuration endpoint address. */
export interface ConfigQuery {
  /** What the endpoint is, for messages. */
  readonly label: EndpointLabel;
  /** The address to connect to (the endpoint name resolved). */
  readonly address: string;
  readonly port: number;
  /** `host:port` as log lines and errors name the endpoint. */
  readonly endpoint: string;
  /** Give up after this many ms, connect and TLS handshake included. */
  readonly timeoutMs: number;
  /** Connect over TLS with these options (`servername` set by the caller). */
  readonly tls?: ConnectionOptions;
  /** Largest reply read before giving up. @default MAX_CONFIG_REPLY_BYTES */
  readonly maxReplyBytes?: number;
  /** Called with the socket once it exists, so a shutdown can destroy it. */
  readonly track?: (socket: Socket) => () => void;
}

/** What one query found: the configuration, or that the server does not know `command`. */
export type ConfigAnswer = ClusterConfig | 'unknown-command';

/**
 * Ask one configuration endpoint address for the cluster configuration with `command`, on a
 * connection of its own that is closed afterwards. Rejects with `ConfigEndpointError` when
 * the endpoint cannot be reached, does not answer within `timeoutMs`, closes early, or answers
 * something that is not a configuration in the documented format.
 */
export function queryClusterConfig(
  query: ConfigQuery,
  command: ConfigCommand,
): Promise<ConfigAnswer> {
  const maxReply = query.maxReplyBytes ?? MAX_CONFIG_REPLY_BYTES;
  return new Promise<ConfigAnswer>((resolve, reject) => {
    const target = { host: query.address, port: query.port };
    const socket: Socket = query.tls ? tlsConnect({ ...query.tls, ...target }) : netConnect(target);
    const untrack = query.track?.(socket);
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const finish = (error: ConfigEndpointError | undefined, answer?: ConfigAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      untrack?.();
      socket.destroy();
      if (error) reject(error);
      else resolve(answer!);
    };
    const fail = (message: string, cause?: unknown) =>
      finish(new ConfigEndpointError(query.label.name, query.endpoint, message, { cause }));
    const timer = setTimeout(
      () =>
        fail(
          `no complete answer to "${CONFIG_REQUEST[command].trim()}" within ${query.timeoutMs} ms ` +
            `(${received} bytes received; lookupTimeout): check that the endpoint is reachable ` +
            `and is ${query.label.indefinite}`,
        ),
      query.timeoutMs,
    );
    timer.unref();

    socket.once(query.tls ? 'secureConnect' : 'connect', () =>
      socket.write(CONFIG_REQUEST[command]),
    );
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > maxReply) {
        fail(`answered more than ${maxReply} bytes without ending the configuration`);
        return;
      }
      chunks.push(chunk);
      const reply = readConfigReply(Buffer.concat(chunks), command);
      if (reply.state === 'complete') finish(undefined, reply.config);
      else if (reply.state === 'unknown-command') finish(undefined, 'unknown-command');
      else if (reply.state === 'invalid')
        fail(`${reply.reason}: it is not ${query.label.indefinite}, or its reply was cut`);
    });
    socket.on('error', (error: NodeJS.ErrnoException) =>
      fail(
        `${query.tls ? 'TLS connection' : 'connection'} failed (${error.code ?? error.message}): ` +
          'check the endpoint address and port, the network path to it (security group, ' +
          'firewall rules) and cache.tls',
        error,
      ),
    );
    socket.on('close', () =>
      fail(
        `closed the connection after ${received} bytes, before the configuration ended ` +
          '(a truncated reply)',
      ),
    );
  });
}
