import { resolveDiscoverySourceOptions } from './discovery-options.js';
import type { DiscoverySourceOptions } from './discovery-options.js';
import { DnsTargets } from './dns-targets.js';
import type { TargetAnswer } from './dns-targets.js';
import { parseHostSpec } from './host-spec.js';
import { LOG_CONTEXT, PolledMemberSource } from './polled-member-source.js';
import type { PollOutcome } from './polled-member-source.js';
import { SingleAddressWatch } from './single-address-warning.js';

/** Options of `MemberDiscovery` (the discovery part of `K8sCacheOptions`). */
export interface MemberDiscoveryOptions extends DiscoverySourceOptions {
  /** What to resolve: a name, `name:port`, an IP, an SRV name or a comma list (see `K8sCacheOptions.host`). */
  host: string;
  /** Environment the ClusterIP warning reads `KUBERNETES_SERVICE_HOST` from. @default process.env */
  env?: NodeJS.ProcessEnv;
}

/**
 * Resolves `host` through DNS into memcached members and keeps the list current: every item of
 * the host option is resolved on each lookup (`DnsTargets`), on the shared refresh schedule and
 * keep-last-good rules of `PolledMemberSource`. Warns once when a Kubernetes Service name keeps
 * resolving to a single address (a ClusterIP Service rather than a headless one).
 */
export class MemberDiscovery extends PolledMemberSource {
  private readonly dns: DnsTargets;
  private readonly singleAddress: SingleAddressWatch;

  constructor(options: MemberDiscoveryOptions) {
    const resolved = resolveDiscoverySourceOptions(options);
    const dns = new DnsTargets(
      parseHostSpec(options.host, resolved.port),
      resolved.resolver,
      resolved.lookupTimeout,
    );
    super(
      { ...resolved, pollName: 'DNS lookup', target: dns.describe() },
      dns.initial(),
      dns.needsDns,
    );
    this.dns = dns;
    this.singleAddress = new SingleAddressWatch({
      minSpanMs: resolved.refreshInterval,
      env: options.env,
    });
  }

  protected poll(): Promise<PollOutcome> {
    return this.dns.resolve((answer) => this.watchSingleAddress(answer));
  }

  protected override cancelPoll(): void {
    this.dns.cancel();
  }

  private watchSingleAddress({ target, members }: TargetAnswer): void {
    if (target.kind !== 'name' || members === undefined) return;
    const warning = this.singleAddress.observe(
      target.name,
      members.map((m) => m.host),
      Date.now(),
    );
    if (warning !== undefined) this.logger.warn(warning, LOG_CONTEXT);
  }
}
