import { startConfigEndpoint } from './elasticache-endpoint.js';
import type { ConfigNode, TestConfigEndpoint } from './elasticache-endpoint.js';

/**
 * A Memorystore for Memcached discovery endpoint for tests, following Google's documentation
 * ("About the Auto Discovery service" and "Use the Auto Discovery service", Memorystore for
 * Memcached): a server of its own on a fixed `IP:port` that answers `config get cluster` with
 *
 *   CONFIG cluster 0 <bytes of the next two lines>
 *   <configuration version, up by one on every node change>
 *   <node-ip>|<node-ip>|<node-port> <node-ip>|<node-ip>|<node-port> ...
 *   (blank line) END
 *
 * framed as ElastiCache's reply is (so `test/support/elasticache-endpoint.ts` serves it), and
 * `ERROR` to anything else, `get AmazonElastiCache:cluster` and data commands included (Google
 * documents no other command: the endpoint is not for get and set). `requests('get')` and
 * `requests('other')` count what a client should never send it.
 */
export function startDiscoveryEndpoint(options: {
  /** Loopback address to listen on. */
  readonly host: string;
  /** @default a free port */
  readonly port?: number;
}): Promise<TestConfigEndpoint> {
  return startConfigEndpoint({ ...options, commands: ['config'] });
}

/** A node as Memorystore lists it: named by its IP (`ip|ip|port`). */
export function listedByIp(node: { readonly host: string; readonly port: number }): ConfigNode {
  return { host: node.host, ip: node.host, port: node.port };
}
