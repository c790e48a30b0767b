import type { Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { ElastiCacheConfigError } from '../errors/discovery.errors.js';
import { K8sOptionsError } from '../errors/k8s.error.js';
import { withDeadline } from '../util/deadline.js';
import { resolveDiscoverySourceOptions } from './discovery-options.js';
import type { DiscoverySourceOptions } from './discovery-options.js';
import { queryClusterConfig } from './config-endpoint-client.js';
import type { ConfigQuery } from './config-endpoint-client.js';
import type { ClusterConfig, ConfigCommand } from './elasticache-config.js';
import { parseHostSpec } from './host-spec.js';
import type { IpTarget, NameTarget } from './host-spec.js';
import { memberId, normalizeMembers } from './member.js';
import type { DiscoveryStats } from './member.js';
import { LOG_CONTEXT, PolledMemberSource } from './polled-member-source.js';
import type { PollOutcome } from './polled-member-source.js';
import type { Resolver } from './resolvers.js';

/** Addresses of the endpoint name tried per poll, one after another, until one answers. */
const MAX_ADDRESSES_PER_POLL = 3;

/** Options of `ElastiCacheDiscovery`. */
export interface ElastiCacheDiscoveryOptions extends DiscoverySourceOptions {
  /** The configuration endpoint: `name[:port]` or `ip[:port]`. */
  host: string;
  /** Ask the endpoint over TLS with these options; its name is the servername. @default undefined */
  tls?: ConnectionOptions;
}

/**
 * Members from an ElastiCache for Memcached configuration endpoint (auto discovery): each poll
 * resolves the endpoint name again (the node behind it can go away), asks
 * `config get cluster` (falling back to `get AmazonElastiCache:cluster` on engines that answer
 * ERROR), and applies the node list only when the configuration version went up. Nodes are
 * identified by host name (their ring position) and reached at the IP given. The refresh
 * schedule and keep-last-good rules are those of DNS discovery (`PolledMemberSource`).
 */
export class ElastiCacheDiscovery extends PolledMemberSource {
  private readonly endpoint: NameTarget | IpTarget;
  private readonly resolver: Resolver;
  private readonly lookupTimeout: number;
  private readonly tls?: ConnectionOptions;
  private readonly sockets = new Set<Socket>();
  /** The command the endpoint answered last; the other one is tried on ERROR. */
  private command: ConfigCommand = 'config';
  private version?: number;
  private staleConfigs = 0;
  private lastStaleWarned?: number;

  constructor(options: ElastiCacheDiscoveryOptions) {
    const resolved = resolveDiscoverySourceOptions(options);
    const endpoint = parseConfigEndpoint(options.host, resolved.port);
    const target = describe(endpoint);
    super({ ...resolved, pollName: 'ElastiCache configuration query', target }, [], true);
    this.endpoint = endpoint;
    this.lookupTimeout = resolved.lookupTimeout;
    this.resolver = resolved.resolver;
    this.tls = options.tls;
  }

  protected async poll(): Promise<PollOutcome> {
    let config: ClusterConfig;
    try {
      config = await this.fetch();
    } catch (error) {
      return { error: error instanceof Error ? error.message : String(error) };
    }
    if (config.nodes.length === 0) {
      return { error: `${describe(this.endpoint)} lists no nodes (version ${config.version})` };
    }
    if (this.version !== undefined && config.version < this.version) {
      // Another node behind the endpoint may not have the newest configuration yet.
      this.staleConfigs++;
      const message =
        `ElastiCache configuration endpoint ${describe(this.endpoint)} answered version ` +
        `${config.version}, older than the ${this.version} in use: ignored (if the cluster was ` +
        're-created, restart the app to follow it)';
      if (this.lastStaleWarned !== config.version) this.logger.warn(message, LOG_CONTEXT);
      else this.logger.debug?.(message, LOG_CONTEXT);
      this.lastStaleWarned = config.version;
      return {};
    }
    if (config.version === this.version) return {};
    this.version = config.version;
    return { members: normalizeMembers(config.nodes) };
  }

  protected override extraStats(): Partial<DiscoveryStats> {
    return { configVersion: this.version, staleConfigs: this.staleConfigs };
  }

  protected override cancelPoll(): void {
    for (const socket of this.sockets) socket.destroy();
    this.resolver.cancel?.();
  }

  /** The configuration from the first address of the endpoint that answers. */
  private async fetch(): Promise<ClusterConfig> {
    const addresses = await this.resolveEndpoint();
    const errors: string[] = [];
    for (const address of addresses.slice(0, MAX_ADDRESSES_PER_POLL)) {
      try {
        return await this.ask(address);
      } catch (error) {
        errors.push(error instanceof Error ? error.message : String(error));
      }
    }
    throw new Error(errors.join('; '));
  }

  private async resolveEndpoint(): Promise<string[]> {
    if (this.endpoint.kind === 'ip') return [this.endpoint.host];
    const name = this.endpoint.name;
    const addresses = await withDeadline(
      this.resolver.lookupHost(name),
      this.lookupTimeout,
      () => undefined,
    );
    if (addresses === undefined) {
      throw new ElastiCacheConfigError(
        describe(this.endpoint),
        `DNS lookup got no answer within ${this.lookupTimeout} ms (lookupTimeout)`,
      );
    }
    if (addresses.length === 0) {
      throw new ElastiCacheConfigError(
        describe(this.endpoint),
        `"${name}" answered no addresses (NXDOMAIN or no records): check the endpoint name`,
      );
    }
    return addresses;
  }

  /** Ask one address, with the command that worked last, then the other one on ERROR. */
  private async ask(address: string): Promise<ClusterConfig> {
    const { port } = this.endpoint;
    const query: ConfigQuery = {
      address,
      port,
      endpoint: memberId({ host: address, port }),
      timeoutMs: this.lookupTimeout,
      tls: this.tls &&
        // The certificate names the endpoint, not its current IP.
        { servername: this.endpoint.kind === 'name' ? this.endpoint.name : undefined, ...this.tls },
      track: (socket) => {
        this.sockets.add(socket);
        return () => this.sockets.delete(socket);
      },
    };
    for (const command of [this.command, other(this.command)]) {
      const answer = await queryClusterConfig(query, command);
      if (answer !== 'unknown-command') {
        this.command = command;
        return answer;
      }
    }
    throw new ElastiCacheConfigError(
      query.endpoint,
      'answered ERROR to both "config get cluster" and "get AmazonElastiCache:cluster": it is a ' +
        "memcached without ElastiCache auto discovery; use discovery: 'dns' for it",
    );
  }
}

/**
 * The configuration endpoint of a `host` option: one `name[:port]` or `ip[:port]` (no list, no
 * SRV name). Throws `K8sOptionsError` otherwise.
 */
export function parseConfigEndpoint(host: string, port: number): NameTarget | IpTarget {
  const targets = parseHostSpec(host, port);
  const [target] = targets;
  if (targets.length !== 1 || target.kind === 'srv') {
    throw new K8sOptionsError(
      `Invalid cache host "${host}" with discovery 'elasticache': give the cluster's ` +
        'configuration endpoint alone, as name[:port] (e.g. mycluster.abc123.cfg.use1.cache.amazonaws.com:11211)',
    );
  }
  return target;
}

function describe(endpoint: NameTarget | IpTarget): string {
  return endpoint.kind === 'ip' ? memberId(endpoint) : `${endpoint.name}:${endpoint.port}`;
}

function other(command: ConfigCommand): ConfigCommand {
  return command === 'config' ? 'get' : 'config';
}
