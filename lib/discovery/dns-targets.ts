import { isIP } from 'node:net';
import { DnsLookupTimeoutError } from '../errors/discovery.errors.js';
import { withDeadline } from '../util/deadline.js';
import type { HostTarget } from './host-spec.js';
import { memberId, normalizeMembers } from './member.js';
import type { Member } from './member.js';
import type { PollOutcome } from './polled-member-source.js';
import type { Resolver } from './resolvers.js';

type DnsTarget = Exclude<HostTarget, { kind: 'ip' }>;

/** Outcome of resolving one target: members, or why the target keeps its previous ones. */
type TargetResult = { ok: true; members: Member[] } | { ok: false; reason: string };

/** What one resolution of every target found, before it is merged into a member list. */
export interface TargetAnswer {
  readonly target: DnsTarget;
  /** Addresses the target answered; undefined when it failed. */
  readonly members?: readonly Member[];
}

/**
 * The targets of a `host` option resolved through DNS: names (A and AAAA), SRV names (each
 * answer with its own port) and IP literals (as they are). Each target keeps its own last good
 * members, so one failing item of a comma list does not drop the others' members.
 */
export class DnsTargets {
  /** Members per target, by index in `targets`: a failing target keeps what it had. */
  private readonly perTarget: Member[][];

  constructor(
    readonly targets: readonly HostTarget[],
    private readonly resolver: Resolver,
    private readonly lookupTimeout: number,
  ) {
    // IP literals are members from the start; DNS items get theirs from the first lookup.
    this.perTarget = targets.map((t) => (t.kind === 'ip' ? [{ host: t.host, port: t.port }] : []));
  }

  /** True when some target needs DNS (else there is never anything to look up). */
  get needsDns(): boolean {
    return this.targets.some((t) => t.kind !== 'ip');
  }

  /** The members known before any lookup (the IP literals). */
  initial(): Member[] {
    return normalizeMembers(this.perTarget.flat());
  }

  /** The host option as it reads in log lines. */
  describe(): string {
    return this.targets.map((t) => (t.kind === 'ip' ? memberId(t) : t.name)).join(',');
  }

  /**
   * Resolve every DNS target once (each bounded by `lookupTimeout`); `onAnswer` sees each
   * successful answer. The members are every target's latest good answer, merged.
   */
  async resolve(onAnswer?: (answer: TargetAnswer) => void): Promise<PollOutcome> {
    const results = await Promise.all(
      this.targets.map((target) =>
        target.kind === 'ip'
          ? Promise.resolve<TargetResult>({
              ok: true,
              members: [{ host: target.host, port: target.port }],
            })
          : this.resolveTarget(target),
      ),
    );
    const reasons: string[] = [];
    results.forEach((result, i) => {
      const target = this.targets[i];
      if (!result.ok) reasons.push(result.reason);
      else {
        this.perTarget[i] = result.members;
        if (target.kind !== 'ip') onAnswer?.({ target, members: result.members });
      }
    });
    return {
      members: normalizeMembers(this.perTarget.flat()),
      error: reasons.length > 0 ? reasons.join('; ') : undefined,
    };
  }

  /** Abort lookups in flight (shutdown). */
  cancel(): void {
    this.resolver.cancel?.();
  }

  private async resolveTarget(target: DnsTarget): Promise<TargetResult> {
    try {
      const lookup =
        target.kind === 'srv'
          ? this.resolveSrv(target.name)
          : this.resolveName(target.name, target.port);
      const members = await withDeadline(lookup, this.lookupTimeout, () => undefined);
      if (members === undefined) {
        return {
          ok: false,
          reason: new DnsLookupTimeoutError(target.name, this.lookupTimeout).message,
        };
      }
      if (members.length === 0) {
        return {
          ok: false,
          reason: `"${target.name}" answered no addresses (NXDOMAIN or no records)`,
        };
      }
      return { ok: true, members };
    } catch (error) {
      return { ok: false, reason: error instanceof Error ? error.message : String(error) };
    }
  }

  private async resolveName(name: string, port: number): Promise<Member[]> {
    const addresses = await this.resolver.lookupHost(name);
    return addresses.map((host) => ({ host, port }));
  }

  private async resolveSrv(name: string): Promise<Member[]> {
    const answers = await this.resolver.resolveSrv(name);
    // A target of "." means "no service here" (RFC 2782).
    const usable = answers.filter((a) => a.name !== '' && a.name !== '.');
    // One failing target fails the item (rejects): better the previous list than half of it.
    const perAnswer = await Promise.all(
      usable.map(async ({ name: target, port }) => {
        const bare = target.endsWith('.') ? target.slice(0, -1) : target;
        const hosts = isIP(bare) ? [bare] : await this.resolver.lookupHost(bare);
        return hosts.map((host) => ({ host, port }));
      }),
    );
    return perAnswer.flat();
  }
}
