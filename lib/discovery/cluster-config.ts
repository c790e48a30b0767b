import { isIP } from 'node:net';
import type { Member } from './member.js';

/*
 * The reply to `config get cluster`, as AWS documents it for an ElastiCache configuration endpoint
 * (ElastiCache guide, "Adding Auto Discovery to your Memcached client library") and Google for a
 * Memorystore for Memcached discovery endpoint ("Use the Auto Discovery service"), followed to the
 * letter; both services answer in the same format:
 *
 *   config get cluster                      get AmazonElastiCache:cluster   (ElastiCache engines
 *   CONFIG cluster 0 <bytes>\r\n           VALUE AmazonElastiCache:cluster 0 <bytes>\r\n  before 1.4.14)
 *   <version>\n
 *   <host>|<ip>|<port> <host>|<ip>|<port> ...\n
 *   \r\n
 *   END\r\n
 *
 * `<bytes>` counts the two data lines (each ended by a bare LF); the version goes up by one on
 * every node change; `<ip>` may be empty (`host||port`: connect by host name). ElastiCache names
 * each node by a host name, Memorystore by its IP (`ip|ip|port`).
 */

/** How the cluster configuration is asked for. */
export type ConfigCommand = 'config' | 'get';

/** The request line of each command. */
export const CONFIG_REQUEST: Readonly<Record<ConfigCommand, string>> = {
  config: 'config get cluster\r\n',
  get: 'get AmazonElastiCache:cluster\r\n',
};

/** The cluster as one configuration endpoint sees it. */
export interface ClusterConfig {
  /** Goes up by one on every node change. */
  readonly version: number;
  /** `host`: the node's host name (its identity); `address`: its IP, when given. */
  readonly nodes: readonly Member[];
}

/** Where reading a reply stands after the bytes received so far. */
export type ConfigReplyState =
  | { readonly state: 'partial' }
  /** `ERROR`: the server does not know the command (try the other one). */
  | { readonly state: 'unknown-command' }
  | { readonly state: 'complete'; readonly config: ClusterConfig }
  | { readonly state: 'invalid'; readonly reason: string };

const CRLF = '\r\n';
/** A header line longer than this is not a reply of ours. */
const MAX_HEADER = 256;
const HEADER: Readonly<Record<ConfigCommand, RegExp>> = {
  config: /^CONFIG cluster (\d+) (\d+)$/,
  get: /^VALUE AmazonElastiCache:cluster (\d+) (\d+)$/,
};
const HOST_NAME =
  /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$/i;

/**
 * Read the reply to `command` from the bytes received so far: `partial` until it is complete,
 * then the configuration, or why the reply is not one. Never throws.
 */
export function readConfigReply(reply: Buffer, command: ConfigCommand): ConfigReplyState {
  const headerEnd = reply.indexOf(CRLF);
  if (headerEnd === -1) {
    return reply.length > MAX_HEADER
      ? invalid(`a first line of more than ${MAX_HEADER} bytes`)
      : { state: 'partial' };
  }
  const header = reply.toString('latin1', 0, headerEnd);
  if (header === 'ERROR') return { state: 'unknown-command' };
  if (header === 'END') {
    return invalid(
      'no configuration (an empty reply: a plain memcached rather than a configuration endpoint?)',
    );
  }
  const match = HEADER[command].exec(header);
  if (!match) return invalid(`an unexpected first line ${JSON.stringify(header.slice(0, 80))}`);
  const length = Number(match[2]);
  const dataStart = headerEnd + CRLF.length;
  const trailer = `${CRLF}END${CRLF}`;
  if (reply.length < dataStart + length + trailer.length) return { state: 'partial' };
  if (
    reply.toString('latin1', dataStart + length, dataStart + length + trailer.length) !== trailer
  ) {
    return invalid(`the ${length} bytes announced are not followed by \\r\\nEND\\r\\n`);
  }
  const parsed = parseClusterConfig(reply.toString('utf8', dataStart, dataStart + length));
  return typeof parsed === 'string'
    ? invalid(`a malformed configuration (${parsed})`)
    : { state: 'complete', config: parsed };
}

/**
 * Parse the data block of a configuration reply (`<version>\n<nodes>\n`). Returns the
 * configuration, or why the data is not one.
 */
export function parseClusterConfig(data: string): ClusterConfig | string {
  const lines = data.split('\n');
  if (lines.length !== 3 || lines[2] !== '') {
    return `${lines.length - 1} data lines where the format has 2, each ended by \\n`;
  }
  const [versionLine, nodesLine] = lines;
  if (!/^\d{1,15}$/.test(versionLine)) {
    return `the version ${JSON.stringify(versionLine.slice(0, 20))} is not a whole number`;
  }
  const nodes: Member[] = [];
  for (const entry of nodesLine === '' ? [] : nodesLine.split(' ')) {
    const node = parseNode(entry);
    if (typeof node === 'string') return node;
    nodes.push(node);
  }
  return { version: Number(versionLine), nodes };
}

function parseNode(entry: string): Member | string {
  const fields = entry.split('|');
  const quoted = JSON.stringify(entry.slice(0, 300));
  if (fields.length !== 3) return `the node ${quoted} is not host|ip|port`;
  const [host, ip, port] = fields;
  if (!HOST_NAME.test(host) && isIP(host) === 0) return `the node ${quoted} has no valid host name`;
  if (ip !== '' && isIP(ip) === 0) return `the node ${quoted} has an invalid IP address`;
  const portNumber = /^\d{1,5}$/.test(port) ? Number(port) : 0;
  if (portNumber < 1 || portNumber > 65535) return `the node ${quoted} has an invalid port`;
  const name = host.toLowerCase();
  return ip === ''
    ? { host: name, port: portNumber }
    : { host: name, port: portNumber, address: ip };
}

function invalid(reason: string): ConfigReplyState {
  return { state: 'invalid', reason: `answered ${reason}` };
}
