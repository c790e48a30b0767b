import type { Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { ConfigEndpointError } from '../errors/discovery.errors.js';
import { withDeadline } from '../util/deadline.js';
import { resolveDiscoverySourceOptions } from './discovery-options.js';
import type { DiscoverySourceOptions } from './discovery-options.js';
import { queryClusterConfig } from './config-endpoint-client.js';
import type { ConfigQuery, EndpointLabel } from './config-endpoint-client.js';
import type { ClusterConfig, ConfigCommand } from './cluster-config.js';
import type { IpTarget, NameTarget } from './host-spec.js';
import { memberId, normalizeMembers } from './member.js';
import type { DiscoveryStats } from './member.js';
import { LOG_CONTEXT, PolledMemberSource } from './polled-member-source.js';
import type { PollOutcome } from './polled-member-source.js';
import type { Resolver } from './resolvers.js';

/** Addresses of the endpoint name tried per poll, one after another, until one answers. */
const MAX_ADDRESSES_PER_POLL = 3;

/** Options of a configuration endpoint source (`ElastiCacheDiscovery`, `MemorystoreDiscovery`). */
export interface ConfigEndpointDiscoveryOptions extends DiscoverySourceOptions {
  /** The configuration endpoint: `name[:port]` or `ip[:port]`. */
  host: string;
  /** Ask the endpoint over TLS with these options; its name is the servername. @default undefined */
  tls?: ConnectionOptions;
}

/** What tells one service's configuration endpoint from another's. */
export interface ConfigEndpointService {
  /** How messages name the endpoint. */
  readonly label: EndpointLabel;
  /** What a poll is, for log lines: 'ElastiCache configuration query'. */
  readonly pollName: string;
  /** The commands the endpoint may know, the documented one first; the next is tried on ERROR. */
  readonly commands: readonly ConfigCommand[];
  /** Parse the `host` option (throws `K8sOptionsError` naming the expected form). */
  parseEndpoint(host: string, port: number): NameTarget | IpTarget;
  /** Why an endpoint that answers ERROR to every command is not one, and what to do. */
  readonly unknownCommands: string;
  /** What to do about a version that went back, for the warning. */
  readonly staleHint: string;
}

/**
 * Members from a configuration endpoint that answers `config get cluster` (ElastiCache auto
 * discovery, Memorystore's discovery endpoint): each poll resolves the endpoint name again (the
 * node behind it can go away), asks for the configuration, and applies the node list only when
 * the configuration version went up; a version that goes back is ignored, counted and logged.
 * Nodes are identified by the host field (their ring position) and reached at the IP given. The
 * refresh schedule and keep-last-good rules are those of DNS discovery (`PolledMemberSource`).
 */
export class ConfigEndpointDiscovery extends PolledMemberSource {
  private readonly endpoint: NameTarget | IpTarget;
  private readonly resolver: Resolver;
  private readonly lookupTimeout: number;
  private readonly tls?: ConnectionOptions;
  private readonly sockets = new Set<Socket>();
  /** The command the endpoint answered last; the others are tried on ERROR. */
  private command: ConfigCommand;
  private version?: number;
  private staleConfigs = 0;
  private lastStaleWarned?: number;

  constructor(
    options: ConfigEndpointDiscoveryOptions,
    private readonly service: ConfigEndpointService,
  ) {
    const resolved = resolveDiscoverySourceOptions(options);
    const endpoint = service.parseEndpoint(options.host, resolved.port);
    super({ ...resolved, pollName: service.pollName, target: describe(endpoint) }, [], true);
    this.endpoint = endpoint;
    this.lookupTimeout = resolved.lookupTimeout;
    this.resolver = resolved.resolver;
    this.tls = options.tls;
    this.command = service.commands[0];
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
        `${this.service.label.name} ${describe(this.endpoint)} answered version ` +
        `${config.version}, older than the ${this.version} in use: ignored (${this.service.staleHint})`;
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
    const fail = (message: string) =>
      new ConfigEndpointError(this.service.label.name, describe(this.endpoint), message);
    if (addresses === undefined) {
      throw fail(`DNS lookup got no answer within ${this.lookupTimeout} ms (lookupTimeout)`);
    }
    if (addresses.length === 0) {
      throw fail(
        `"${name}" answered no addresses (NXDOMAIN or no records): check the endpoint name`,
      );
    }
    return addresses;
  }

  /** Ask one address with the command that worked last, then the others on ERROR. */
  private async ask(address: string): Promise<ClusterConfig> {
    const { port } = this.endpoint;
    const query: ConfigQuery = {
      label: this.service.label,
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
    const commands = this.service.commands;
    for (const command of [this.command, ...commands.filter((c) => c !== this.command)]) {
      const answer = await queryClusterConfig(query, command);
      if (answer !== 'unknown-command') {
        this.command = command;
        return answer;
      }
    }
    throw new ConfigEndpointError(
      this.service.label.name,
      query.endpoint,
      this.service.unknownCommands,
    );
  }
}

function describe(endpoint: NameTarget | IpTarget): string {
  return endpoint.kind === 'ip' ? memberId(endpoint) : `${endpoint.name}:${endpoint.port}`;
}
