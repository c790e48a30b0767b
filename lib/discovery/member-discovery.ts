import { Logger } from '@nestjs/common';
import type { LoggerService } from '@nestjs/common';
import { isIP } from 'node:net';
import { DnsLookupTimeoutError } from '../errors/discovery.errors.js';
import { CACHE_DEFAULTS } from '../cache/cache-defaults.js';
import { K8sOptionsError } from '../errors/k8s.error.js';
import { parseHostSpec } from './host-spec.js';
import type { HostTarget } from './host-spec.js';
import { diffMembers, memberId, normalizeMembers } from './member.js';
import type {
  DiscoveryStats,
  LookupReason,
  LookupResult,
  Member,
  MemberDiff,
  MemberSource,
} from './member.js';
import { DnsServersResolver, SystemResolver } from './resolvers.js';
import type { Resolver } from './resolvers.js';

const LOG_CONTEXT = 'K8sDiscovery';

/** Options of `MemberDiscovery` (the discovery part of `K8sCacheOptions`). */
export interface MemberDiscoveryOptions {
  /** What to resolve: a name, `name:port`, an IP, an SRV name or a comma list (see `K8sCacheOptions.host`). */
  host: string;
  /** Port for names that carry none. @default 11211 */
  port?: number;
  /** DNS servers to query directly instead of the system resolver. @default undefined (system resolver) */
  dnsServers?: string[];
  /** Periodic re-resolution, in ms; 0 turns it off. @default 30000 */
  refreshInterval?: number;
  /** Least time between two failure-triggered lookups, in ms. @default 1000 */
  minRefreshInterval?: number;
  /** Give up on one lookup after this many ms (the member list stays). @default 2000 */
  lookupTimeout?: number;
  /** Resolver to use instead of the one `dnsServers` selects (tests, custom DNS). @default undefined */
  resolver?: Resolver;
  /** Where log lines go. @default Nest's Logger, context 'K8sDiscovery' */
  logger?: LoggerService;
}

type Listener = (members: readonly Member[], diff: MemberDiff) => void;

/** Outcome of resolving one target: members, or why the target keeps its previous ones. */
type TargetResult = { ok: true; members: Member[] } | { ok: false; reason: string };

/**
 * Resolves `host` into memcached members and keeps the list current (ioredis-cluster style):
 * single-flight lookups, rate-limited on-demand refresh, a periodic refresh re-armed after
 * each lookup, every lookup bounded by a timeout, and a list that only changes on success.
 */
export class MemberDiscovery implements MemberSource {
  private readonly targets: readonly HostTarget[];
  private readonly resolver: Resolver;
  private readonly logger: LoggerService;
  private readonly refreshInterval: number;
  private readonly minRefreshInterval: number;
  private readonly lookupTimeout: number;
  private readonly listeners = new Set<Listener>();
  private readonly lookupListeners = new Set<(result: LookupResult) => void>();
  /** Members per target, by index in `targets`: a failing target keeps what it had. */
  private readonly perTarget: Member[][];
  private current: Member[];

  private startPromise?: Promise<readonly Member[]>;
  private inFlight?: Promise<void>;
  /**
   * `inFlight` while it cannot have seen anything newer than a caller has: until the first
   * microtask checkpoint after it began, no I/O has run, so a refresh() then may join it.
   */
  private joinable?: Promise<void>;
  /** The one lookup that refresh() calls made during an older `inFlight` wait for. */
  private followUp?: Promise<void>;
  private stopped = false;
  private periodicTimer?: NodeJS.Timeout;
  private deferredTimer?: NodeJS.Timeout;
  /** A failure-triggered lookup is owed; it runs as soon as the rate limit allows. */
  private refreshWanted = false;
  private refreshReason = '';
  private lastLookupStartedAt = Number.NEGATIVE_INFINITY;

  private lookups = 0;
  private readonly lookupsByReason: Record<LookupReason, number> = {
    start: 0,
    periodic: 0,
    failure: 0,
    manual: 0,
  };
  private failures = 0;
  private healthy = true;
  private lastError?: string;
  private lastErrorAt?: number;
  private lastSuccessAt?: number;

  constructor(options: MemberDiscoveryOptions) {
    this.refreshInterval = checkMs(
      'refreshInterval',
      options.refreshInterval,
      CACHE_DEFAULTS.refreshInterval,
    );
    this.minRefreshInterval = checkMs(
      'minRefreshInterval',
      options.minRefreshInterval,
      CACHE_DEFAULTS.minRefreshInterval,
    );
    this.lookupTimeout = checkMs(
      'lookupTimeout',
      options.lookupTimeout,
      CACHE_DEFAULTS.lookupTimeout,
    );
    if (this.lookupTimeout === 0) {
      throw new K8sOptionsError('Invalid cache lookupTimeout 0: expected a positive number of ms');
    }
    this.targets = parseHostSpec(options.host, options.port ?? CACHE_DEFAULTS.port);
    this.resolver =
      options.resolver ??
      (options.dnsServers?.length
        ? new DnsServersResolver(options.dnsServers, this.lookupTimeout)
        : new SystemResolver());
    this.logger = options.logger ?? new Logger(); // calls pass LOG_CONTEXT, which a user's LoggerService needs too
    // IP literals are members from the start; DNS items get theirs from the first lookup.
    this.perTarget = this.targets.map((t) =>
      t.kind === 'ip' ? [{ host: t.host, port: t.port }] : [],
    );
    this.current = normalizeMembers(this.perTarget.flat());
  }

  /** First lookup, then the periodic refresh. Resolves with the members; never rejects. */
  start(): Promise<readonly Member[]> {
    // The lookup arms the periodic timer when it ends, once start() was called.
    this.startPromise ??= this.lookupOrJoin('start').then(() => this.current);
    return this.startPromise;
  }

  members(): readonly Member[] {
    return this.current;
  }

  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onLookup(listener: (result: LookupResult) => void): () => void {
    this.lookupListeners.add(listener);
    return () => this.lookupListeners.delete(listener);
  }

  /**
   * Re-resolve now: resolves once a lookup that began after this call has ended, so the answer
   * is never older than what the caller knew. Calls made together share one lookup; calls made
   * during an older lookup share one follow-up that starts when it ends. Never rejects.
   */
  refresh(): Promise<void> {
    if (this.stopped || !this.inFlight || this.inFlight === this.joinable) {
      return this.lookupOrJoin('manual');
    }
    this.followUp ??= this.inFlight.then(() => {
      this.followUp = undefined;
      // A lookup running now (started by pump() as the old one ended) began after the callers.
      return this.lookupOrJoin('manual');
    });
    return this.followUp;
  }

  /**
   * A member failed with a connection-class error: look up again soon. However many calls come,
   * at most one lookup starts per `minRefreshInterval`; calls inside a window share one lookup
   * at its end. Never throws.
   */
  requestRefresh(reason: string): void {
    if (this.stopped || !this.hasDnsTargets()) return;
    this.refreshWanted = true;
    this.refreshReason = reason;
    this.pump();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.periodicTimer);
    clearTimeout(this.deferredTimer);
    this.periodicTimer = this.deferredTimer = undefined;
    try {
      this.resolver.cancel?.();
    } catch (error) {
      this.logger.debug?.(`Cancelling DNS lookups failed: ${String(error)}`, LOG_CONTEXT);
    }
  }

  stats(): DiscoveryStats {
    return {
      lookups: this.lookups,
      lookupsByReason: { ...this.lookupsByReason },
      failures: this.failures,
      healthy: this.healthy,
      lastError: this.lastError,
      lastErrorAt: this.lastErrorAt,
      lastSuccessAt: this.lastSuccessAt,
      members: this.current.map(memberId),
    };
  }

  /** Start a lookup, or join the one running (periodic and failure-triggered lookups). */
  private lookupOrJoin(reason: LookupReason): Promise<void> {
    if (this.stopped || !this.hasDnsTargets()) return Promise.resolve();
    if (this.inFlight) return this.inFlight;
    const lookup = this.lookup(reason)
      .catch((error: unknown) => this.recordFailure(`unexpected error: ${String(error)}`))
      .finally(() => {
        this.inFlight = undefined;
        if (this.startPromise) this.armPeriodic();
        this.pump();
      });
    this.inFlight = this.joinable = lookup;
    queueMicrotask(() => {
      if (this.joinable === lookup) this.joinable = undefined;
    });
    return lookup;
  }

  private hasDnsTargets(): boolean {
    return this.targets.some((t) => t.kind !== 'ip');
  }

  private describeHost(): string {
    return this.targets.map((t) => (t.kind === 'ip' ? memberId(t) : t.name)).join(',');
  }

  /** Start the owed failure-triggered lookup if the rate limit allows, else when it will. */
  private pump(): void {
    if (!this.refreshWanted || this.stopped || this.inFlight || this.deferredTimer) return;
    const wait = this.lastLookupStartedAt + this.minRefreshInterval - Date.now();
    if (wait > 0) {
      this.deferredTimer = setTimeout(() => {
        this.deferredTimer = undefined;
        this.pump();
      }, wait).unref();
      return;
    }
    this.refreshWanted = false;
    this.logger.debug?.(`Refreshing members: ${this.refreshReason}`, LOG_CONTEXT);
    void this.lookupOrJoin('failure');
  }

  /** The periodic timer runs from the end of the latest lookup, so lookups never pile up. */
  private armPeriodic(): void {
    clearTimeout(this.periodicTimer);
    this.periodicTimer = undefined;
    if (this.stopped || this.refreshInterval === 0 || !this.hasDnsTargets()) return;
    this.periodicTimer = setTimeout(() => {
      this.periodicTimer = undefined;
      void this.lookupOrJoin('periodic');
    }, this.refreshInterval).unref();
  }

  private async lookup(reason: LookupReason): Promise<void> {
    const started = performance.now();
    this.lastLookupStartedAt = Date.now();
    this.lookups++;
    this.lookupsByReason[reason]++;
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
    // stop() ran meanwhile: the app is shutting down, nobody wants this answer.
    if (this.stopped) return;

    const reasons: string[] = [];
    results.forEach((result, i) => {
      if (result.ok) this.perTarget[i] = result.members;
      else reasons.push(result.reason);
    });
    this.applyMembers(normalizeMembers(this.perTarget.flat()));
    const error = reasons.length > 0 ? reasons.join('; ') : undefined;
    if (error !== undefined) this.recordFailure(error);
    else this.recordSuccess();
    const result: LookupResult = {
      reason,
      members: this.current.length,
      durationMs: performance.now() - started,
      error,
    };
    for (const listener of this.lookupListeners) {
      try {
        listener(result);
      } catch (thrown) {
        this.logger.error(`A lookup listener threw: ${String(thrown)}`, LOG_CONTEXT);
      }
    }
  }

  private async resolveTarget(target: Exclude<HostTarget, { kind: 'ip' }>): Promise<TargetResult> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new DnsLookupTimeoutError(target.name, this.lookupTimeout)),
        this.lookupTimeout,
      );
      timer.unref();
    });
    try {
      const members = await Promise.race([
        target.kind === 'srv'
          ? this.resolveSrvTarget(target.name)
          : this.resolveName(target.name, target.port),
        timeout,
      ]);
      if (members.length === 0) {
        return {
          ok: false,
          reason: `"${target.name}" answered no addresses (NXDOMAIN or no records)`,
        };
      }
      return { ok: true, members };
    } catch (error) {
      return { ok: false, reason: error instanceof Error ? error.message : String(error) };
    } finally {
      clearTimeout(timer);
    }
  }

  private async resolveName(name: string, port: number): Promise<Member[]> {
    const addresses = await this.resolver.lookupHost(name);
    return addresses.map((host) => ({ host, port }));
  }

  private async resolveSrvTarget(name: string): Promise<Member[]> {
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

  private applyMembers(next: Member[]): void {
    const diff = diffMembers(this.current, next);
    if (diff.added.length === 0 && diff.removed.length === 0) return;
    this.current = next;
    const list = (members: readonly Member[]) => members.map(memberId).join(', ') || 'none';
    this.logger.log(
      `Cache members of "${this.describeHost()}" changed: added ${list(diff.added)}; ` +
        `removed ${list(diff.removed)}; now ${next.length}`,
      LOG_CONTEXT,
    );
    for (const listener of this.listeners) {
      try {
        listener(next, diff);
      } catch (error) {
        this.logger.error(
          `A member-change listener threw: ${error instanceof Error ? error.message : String(error)}`,
          error instanceof Error ? error.stack : undefined,
          LOG_CONTEXT,
        );
      }
    }
  }

  private recordFailure(reason: string): void {
    this.failures++;
    this.lastError = reason;
    this.lastErrorAt = Date.now();
    const keeping =
      this.current.length > 0
        ? `keeping the ${this.current.length} current members`
        : 'no members yet, so every cache read is a miss';
    const message = `DNS lookup for cache members failed: ${reason}; ${keeping} and retrying`;
    if (this.healthy) this.logger.warn(message, LOG_CONTEXT);
    else this.logger.debug?.(message, LOG_CONTEXT);
    this.healthy = false;
  }

  private recordSuccess(): void {
    this.lastSuccessAt = Date.now();
    if (!this.healthy) {
      this.logger.log(
        `DNS lookup for cache members works again (${this.current.length} members)`,
        LOG_CONTEXT,
      );
    }
    this.healthy = true;
  }
}

/** Node turns a timer delay above this into 1 ms: a larger option would spin or time out at once. */
const MAX_TIMER_MS = 2_147_483_647;

function checkMs(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0 || value > MAX_TIMER_MS) {
    throw new K8sOptionsError(
      `Invalid cache ${name} ${String(value)}: expected a whole number of ms from 0 to ` +
        `${MAX_TIMER_MS} (about 24.8 days)`,
    );
  }
  return value;
}
