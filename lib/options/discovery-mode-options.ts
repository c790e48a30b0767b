import type { ConnectionOptions } from 'node:tls';
import { parseConfigEndpoint } from '../discovery/elasticache-discovery.js';
import { parseHostSpec } from '../discovery/host-spec.js';
import type { DiscoveryKind } from '../discovery/member-source.factory.js';
import { parseDiscoveryEndpoint } from '../discovery/memorystore-discovery.js';
import { parseEndpoint } from '../discovery/single-endpoint.js';
import { K8sOptionsError } from '../errors/k8s.error.js';
import { CACHE_DEFAULTS } from './cache-defaults.js';
import type { K8sCacheOptions } from './k8s-options.interface.js';

const DISCOVERY_KINDS: readonly DiscoveryKind[] = ['dns', 'elasticache', 'memorystore', 'endpoint'];

/** An ElastiCache Serverless endpoint name (`<cache>-<id>.serverless.<region>.cache.amazonaws.com`). */
const SERVERLESS_NAME = /\.serverless\.[a-z0-9-]+\.cache\.amazonaws\.com(\.cn)?\.?$/i;

/** Options that mean ejection, which never happens to an endpoint. */
const EJECTION_OPTIONS = ['failureLimit', 'retryTimeout'] as const;

/** `cache.discovery`, checked: `'dns'` when unset. */
export function resolveDiscovery(value: unknown): DiscoveryKind {
  if (value === undefined) return 'dns';
  if (!DISCOVERY_KINDS.includes(value as DiscoveryKind)) {
    throw new K8sOptionsError(
      `cache.discovery must be ${DISCOVERY_KINDS.map((k) => `'${k}'`).join(', ')}, got ` +
        `${JSON.stringify(value)}.`,
    );
  }
  return value as DiscoveryKind;
}

/** Check `host` in the form `discovery` takes (throws `K8sOptionsError` naming the bad part). */
export function checkHost(discovery: DiscoveryKind, host: string, port: number): void {
  switch (discovery) {
    case 'elasticache':
      parseConfigEndpoint(host, port);
      return;
    case 'memorystore':
      parseDiscoveryEndpoint(host, port);
      return;
    case 'endpoint':
      parseEndpoint(host, port);
      return;
    case 'dns':
      parseHostSpec(host, port);
  }
}

/**
 * What `discovery: 'endpoint'` allows and implies: options that only make sense with several
 * members or with ejection are refused (they would do nothing), an ElastiCache Serverless
 * endpoint needs TLS, and over TLS the endpoint's name is the servername (SNI and the certificate
 * check). Returns the TLS options to connect with.
 */
export function resolveEndpointMode(
  options: K8sCacheOptions,
  resolved: { readonly port: number; readonly replicas: number },
  tls: ConnectionOptions | undefined,
): ConnectionOptions | undefined {
  const { port, replicas } = resolved;
  if (replicas > 1) {
    throw new K8sOptionsError(
      `cache.replicas (${replicas}) cannot be used with discovery 'endpoint': the endpoint is one ` +
        'logical member, so every copy would land on it. Remove cache.replicas.',
    );
  }
  for (const name of EJECTION_OPTIONS) {
    // The default passes: resolved options are resolved again where the store is built.
    if (options[name] !== undefined && options[name] !== CACHE_DEFAULTS[name]) {
      throw new K8sOptionsError(
        `cache.${name} cannot be used with discovery 'endpoint': the endpoint is never ejected ` +
          '(its keys have nowhere else to go); its calls fail within connectTimeout and ' +
          `commandTimeout while it is down, and it reconnects with a bounded back-off. Remove cache.${name}.`,
      );
    }
  }
  if (options.dnsServers !== undefined) {
    throw new K8sOptionsError(
      "cache.dnsServers cannot be used with discovery 'endpoint': each connection resolves the " +
        "endpoint's name through the system resolver. Remove cache.dnsServers, or give the " +
        "endpoint's IP address as cache.host.",
    );
  }
  if (!options.host) return tls;
  const endpoint = parseEndpoint(options.host, port);
  if (endpoint.kind !== 'name') return tls;
  if (tls === undefined && SERVERLESS_NAME.test(endpoint.name)) {
    throw new K8sOptionsError(
      `cache.host "${options.host}" is an ElastiCache Serverless endpoint, which accepts TLS ` +
        'connections only: set cache.tls: true (the system CAs trust its certificate).',
    );
  }
  // Node would send the host name anyway; said here so the health probe (which connects by the
  // member id) and every connection check the certificate against the endpoint name.
  return tls && { ...tls, servername: tls.servername ?? endpoint.name.replace(/\.$/, '') };
}
