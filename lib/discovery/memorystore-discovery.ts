import { ConfigEndpointDiscovery } from './config-endpoint-discovery.js';
import type {
  ConfigEndpointDiscoveryOptions,
  ConfigEndpointService,
} from './config-endpoint-discovery.js';
import { parseSingleEndpoint } from './host-spec.js';
import type { IpTarget, NameTarget } from './host-spec.js';

/** Options of `MemorystoreDiscovery`. */
export type MemorystoreDiscoveryOptions = ConfigEndpointDiscoveryOptions;

/**
 * The discovery endpoint of a `host` option with `discovery: 'memorystore'`: one `ip[:port]` (a
 * name also works), no list, no SRV name. Throws `K8sOptionsError` otherwise.
 */
export function parseDiscoveryEndpoint(host: string, port: number): NameTarget | IpTarget {
  return parseSingleEndpoint(
    host,
    port,
    'memorystore',
    "the instance's discovery endpoint",
    '10.0.0.7:11211, the discoveryEndpoint that gcloud memcache instances describe shows',
  );
}

/**
 * Memorystore for Memcached, as Google documents it ("About the Auto Discovery service", "Use the
 * Auto Discovery service"): a discovery endpoint of its own, only for `config get cluster`, whose
 * reply has ElastiCache's format with each node as `ip|ip|port`. No other command is documented:
 * nothing else is ever sent to it.
 */
const MEMORYSTORE: ConfigEndpointService = {
  label: {
    name: 'Memorystore discovery endpoint',
    indefinite: 'a Memorystore for Memcached discovery endpoint',
  },
  pollName: 'Memorystore discovery query',
  commands: ['config'],
  parseEndpoint: parseDiscoveryEndpoint,
  unknownCommands:
    'answered ERROR to "config get cluster": it is a memcached node, not the instance\'s ' +
    'discovery endpoint (gcloud memcache instances describe <instance> --region <region> shows ' +
    "it as discoveryEndpoint); to list the nodes yourself, use discovery: 'dns' with a comma list",
  // Google: the discovery service is eventually consistent; the higher version is the newer one.
  staleHint:
    'the discovery service is eventually consistent; if the instance was re-created, restart the app',
};

/**
 * Members from a Memorystore for Memcached discovery endpoint: each poll asks
 * `config get cluster` and applies the node list only when the configuration version went up (a
 * version that goes back, which Google's eventually consistent service can answer, is ignored
 * and logged). Nodes are identified and reached by their IP; the discovery endpoint itself is
 * never used for data.
 */
export class MemorystoreDiscovery extends ConfigEndpointDiscovery {
  constructor(options: MemorystoreDiscoveryOptions) {
    super(options, MEMORYSTORE);
  }
}
