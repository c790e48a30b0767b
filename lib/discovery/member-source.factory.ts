import type { LoggerService } from '@nestjs/common';
import type { ConnectionOptions } from 'node:tls';
import { ElastiCacheDiscovery } from './elasticache-discovery.js';
import { MemberDiscovery } from './member-discovery.js';
import type { MemberSource } from './member.js';

/** How the members of `host` are found (`K8sCacheOptions.discovery`). */
export type DiscoveryKind = 'dns' | 'elasticache';

/** What `createMemberSource` needs: the resolved cache options (validated once, before). */
export interface MemberSourceOptions {
  readonly host: string;
  readonly port: number;
  readonly discovery: DiscoveryKind;
  readonly dnsServers?: string[];
  readonly refreshInterval: number;
  readonly minRefreshInterval: number;
  readonly lookupTimeout: number;
  readonly tls?: ConnectionOptions;
}

/** The member source the options ask for: DNS discovery, or ElastiCache auto discovery. */
export function createMemberSource(
  options: MemberSourceOptions,
  logger?: LoggerService,
): MemberSource {
  const common = {
    host: options.host,
    port: options.port,
    dnsServers: options.dnsServers,
    refreshInterval: options.refreshInterval,
    minRefreshInterval: options.minRefreshInterval,
    lookupTimeout: options.lookupTimeout,
    logger,
  };
  return options.discovery === 'elasticache'
    ? new ElastiCacheDiscovery({ ...common, tls: options.tls })
    : new MemberDiscovery(common);
}
