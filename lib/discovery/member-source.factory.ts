import type { LoggerService } from '@nestjs/common';
import type { ConnectionOptions } from 'node:tls';
import { ElastiCacheDiscovery } from './elasticache-discovery.js';
import { FixedMembers } from './fixed-members.js';
import { MemberDiscovery } from './member-discovery.js';
import type { MemberSource } from './member.js';
import { MemorystoreDiscovery } from './memorystore-discovery.js';
import { endpointMember } from './single-endpoint.js';

/** How the members of `host` are found (`K8sCacheOptions.discovery`). */
export type DiscoveryKind = 'dns' | 'elasticache' | 'memorystore' | 'endpoint';

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

/**
 * The member source the options ask for: DNS discovery, ElastiCache auto discovery, Memorystore's
 * discovery endpoint, or one endpoint that never changes (nothing to look up).
 */
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
  switch (options.discovery) {
    case 'elasticache':
      return new ElastiCacheDiscovery({ ...common, tls: options.tls });
    case 'memorystore':
      return new MemorystoreDiscovery({ ...common, tls: options.tls });
    case 'endpoint':
      return new FixedMembers([endpointMember(options.host, options.port)]);
    case 'dns':
      return new MemberDiscovery(common);
  }
}
