import { readFileSync } from 'node:fs';
import type { K8sCacheOptions } from 'nestjs-k8s';

/** The cache options from the environment, as a Deployment sets them. */
export function cacheOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): K8sCacheOptions {
  return {
    host: env.CACHE_HOST || undefined,
    // 'dns' (the default), 'elasticache' (CACHE_HOST is the configuration endpoint),
    // 'memorystore' (the discovery endpoint) or 'endpoint' (one endpoint: ElastiCache Serverless).
    // Anything else fails at start-up with a K8sOptionsError listing these.
    discovery: (env.CACHE_DISCOVERY || undefined) as K8sCacheOptions['discovery'],
    port: env.CACHE_PORT ? Number(env.CACHE_PORT) : undefined,
    dnsServers: env.CACHE_DNS_SERVERS
      ? env.CACHE_DNS_SERVERS.split(',').map((s) => s.trim())
      : undefined,
    refreshInterval: env.CACHE_REFRESH_INTERVAL ? Number(env.CACHE_REFRESH_INTERVAL) : undefined,
    tls: tlsFromEnv(env),
    namespace: 'sample',
    ttl: 60_000,
    // Command round trips in buckets, for the latency histogram on /metrics.
    collectTimings: true,
  };
}

/**
 * TLS to memcached: `CACHE_TLS=true` trusts the system CAs; `CACHE_TLS_CA` (a PEM file) trusts that
 * CA; `CACHE_TLS_SERVERNAME` is the name the certificates hold when they carry no pod IPs.
 */
function tlsFromEnv(env: NodeJS.ProcessEnv): K8sCacheOptions['tls'] {
  if (env.CACHE_TLS !== 'true' && !env.CACHE_TLS_CA) return undefined;
  return {
    ...(env.CACHE_TLS_CA && { ca: readFileSync(env.CACHE_TLS_CA) }),
    ...(env.CACHE_TLS_SERVERNAME && { servername: env.CACHE_TLS_SERVERNAME }),
  };
}
