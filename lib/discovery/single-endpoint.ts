import { parseSingleEndpoint } from './host-spec.js';
import type { IpTarget, NameTarget } from './host-spec.js';
import type { Member } from './member.js';

/**
 * The endpoint of a `host` option with `discovery: 'endpoint'` (ElastiCache Serverless, mcrouter,
 * twemproxy, a ClusterIP Service): one `name[:port]` or `ip[:port]`, no list, no SRV name.
 * Throws `K8sOptionsError` otherwise.
 */
export function parseEndpoint(host: string, port: number): NameTarget | IpTarget {
  return parseSingleEndpoint(
    host,
    port,
    'endpoint',
    'one endpoint',
    'mycache-abc123.serverless.use1.cache.amazonaws.com:11211',
  );
}

/**
 * The one member of an endpoint: named and reached by its host name (each new connection resolves
 * it again through the system resolver, following the endpoint wherever DNS points) or its IP.
 */
export function endpointMember(host: string, port: number): Member {
  const target = parseEndpoint(host, port);
  return target.kind === 'ip'
    ? { host: target.host, port: target.port }
    : { host: target.name, port: target.port };
}
