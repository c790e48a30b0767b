import { ConfigEndpointDiscovery } from './config-endpoint-discovery.js';
import type {
  ConfigEndpointDiscoveryOptions,
  ConfigEndpointService,
} from './config-endpoint-discovery.js';
import { parseSingleEndpoint } from './host-spec.js';
import type { IpTarget, NameTarget } from './host-spec.js';

/** Options of `ElastiCacheDiscovery`. */
export type ElastiCacheDiscoveryOptions = ConfigEndpointDiscoveryOptions;

/**
 * The configuration endpoint of a `host` option with `discovery: 'elasticache'`: one
 * `name[:port]` or `ip[:port]` (no list, no SRV name). Throws `K8sOptionsError` otherwise.
 */
export function parseConfigEndpoint(host: string, port: number): NameTarget | IpTarget {
  return parseSingleEndpoint(
    host,
    port,
    'elasticache',
    "the cluster's configuration endpoint",
    'mycluster.abc123.cfg.use1.cache.amazonaws.com:11211',
  );
}

/** ElastiCache for Memcached (node-based clusters), as the ElastiCache guide documents it. */
const ELASTICACHE: ConfigEndpointService = {
  label: {
    name: 'ElastiCache configuration endpoint',
    indefinite: 'an ElastiCache for Memcached configuration endpoint',
  },
  pollName: 'ElastiCache configuration query',
  // Engines before 1.4.14 know only the second ("Adding Auto Discovery to your Memcached client
  // library").
  commands: ['config', 'get'],
  parseEndpoint: parseConfigEndpoint,
  unknownCommands:
    'answered ERROR to both "config get cluster" and "get AmazonElastiCache:cluster": it is a ' +
    "memcached without ElastiCache auto discovery; use discovery: 'dns' for it",
  staleHint: 'if the cluster was re-created, restart the app to follow it',
};

/**
 * Members from an ElastiCache for Memcached configuration endpoint (auto discovery): each poll
 * resolves the endpoint name again (the node behind it can go away), asks `config get cluster`
 * (falling back to `get AmazonElastiCache:cluster` on engines that answer ERROR), and applies
 * the node list only when the configuration version went up. Nodes are identified by host name
 * (their ring position) and reached at the IP given.
 */
export class ElastiCacheDiscovery extends ConfigEndpointDiscovery {
  constructor(options: ElastiCacheDiscoveryOptions) {
    super(options, ELASTICACHE);
  }
}
