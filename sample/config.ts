import type { K8sCacheOptions } from 'nestjs-k8s';

/** The cache options from the environment, as a Deployment sets them. */
export function cacheOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): K8sCacheOptions {
  return {
    host: env.CACHE_HOST || undefined,
    port: env.CACHE_PORT ? Number(env.CACHE_PORT) : undefined,
    dnsServers: env.CACHE_DNS_SERVERS
      ? env.CACHE_DNS_SERVERS.split(',').map((s) => s.trim())
      : undefined,
    refreshInterval: env.CACHE_REFRESH_INTERVAL ? Number(env.CACHE_REFRESH_INTERVAL) : undefined,
    namespace: 'sample',
    ttl: 60_000,
  };
}
