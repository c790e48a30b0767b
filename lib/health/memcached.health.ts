import type { ConnectionOptions } from 'node:tls';
import { Inject, Injectable, Optional } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import type { HealthIndicatorResult } from '@nestjs/terminus';
import { K8S_MEMCACHED_STORE } from '../cache/cache.constants.js';
import type { MemcachedStore } from '../memcached/store/memcached.store.js';
import { CachedCheck } from './cached-check.js';
import { probeMember } from './member-probe.js';

/** The default of {@link MemcachedHealthOptions.timeout}: probes must allow longer than this. */
export const MEMCACHED_HEALTH_TIMEOUT_MS = 1000;

/** Options of {@link MemcachedHealthIndicator.isHealthy}. */
export interface MemcachedHealthOptions {
  /**
   * Report `down` (readiness fails) when no member answers. Off by default: a cache outage
   * makes every read a miss, not an error, so taking every pod out of its Service over it
   * would turn a slower app into no app. @default false (report `degraded`, HTTP 200)
   */
  failWhenEmpty?: boolean;
  /** How long one member may take to answer `version`, in ms. @default 1000 */
  timeout?: number;
  /** Reuse a result for this many ms, so frequent probes do not open a connection each. @default 1000 */
  cacheTime?: number;
}

/** What the indicator found, before it becomes a Terminus result. */
interface CacheProbe {
  readonly answered: boolean;
  readonly detail: Record<string, unknown>;
}

/**
 * Terminus health indicator of the memcached cache of `K8sModule`: `up` when at least one
 * member on the ring answers, with the members, the ejected ones, which answered and how DNS
 * discovery fares (last refresh, last lookup error) in the detail. With no member answering
 * (none discovered, all ejected or all silent) it reports `degraded`, which keeps the health
 * check at HTTP 200 (Terminus 11 has no `degraded`: there `up` with `degraded: true`), unless
 * `failWhenEmpty` makes it `down`. On the in-memory cache (no
 * `cache.host`) it is `up` with `backend: 'memory'`; in an app without `K8sModule`, `down`. It
 * never throws.
 *
 * ```ts
 * @Get('ready') @HealthCheck()
 * ready() { return this.health.check([() => this.cache.isHealthy('cache')]); }
 * ```
 */
@Injectable()
export class MemcachedHealthIndicator {
  private readonly checks = new CachedCheck<CacheProbe>();

  constructor(
    private readonly healthIndicatorService: HealthIndicatorService,
    // Optional so that apps without K8sModule can still use the other indicators of the module.
    @Optional()
    @Inject(K8S_MEMCACHED_STORE)
    private readonly store: MemcachedStore | null | undefined,
  ) {}

  /** Probe the cache; the result is keyed by `key` in the health check's output. */
  async isHealthy<const Key extends string = 'cache'>(
    key: Key = 'cache' as Key,
    options: MemcachedHealthOptions = {},
  ): Promise<HealthIndicatorResult<Key>> {
    const session = this.healthIndicatorService.check(key);
    if (this.store === undefined) {
      return session.down({
        message: 'no cache to check: import K8sModule.forRoot({ isGlobal: true, cache: … })',
      });
    }
    if (this.store === null) return session.up({ backend: 'memory' });
    const store = this.store;
    const timeout = options.timeout ?? MEMCACHED_HEALTH_TIMEOUT_MS;
    const { value, cached } = await this.checks.run(
      `${key}:${timeout}`,
      options.cacheTime ?? 1000,
      () => probeStore(store, timeout, store.opts.tls),
    );
    const detail = { ...value.detail, ...(cached && { cachedResponse: true }) };
    if (value.answered) return session.up(detail);
    return options.failWhenEmpty ? session.down(detail) : degraded(session, detail);
  }
}

interface HealthIndicatorSessionLike<Key extends string> {
  up(data: Record<string, unknown>): HealthIndicatorResult<Key>;
  /** Terminus 12 only. */
  degraded?: (data: Record<string, unknown>) => HealthIndicatorResult<Key>;
}

/**
 * `degraded` (HTTP 200) where Terminus has it (12); Terminus 11 knows only `up` and `down`, so
 * there the closest that keeps readiness passing: `up` with `degraded: true` and the message.
 */
function degraded<Key extends string>(
  session: HealthIndicatorSessionLike<Key>,
  detail: Record<string, unknown>,
): HealthIndicatorResult<Key> {
  return typeof session.degraded === 'function'
    ? session.degraded(detail)
    : session.up({ ...detail, degraded: true });
}

async function probeStore(
  store: MemcachedStore,
  timeout: number,
  tls: ConnectionOptions | undefined,
): Promise<CacheProbe> {
  const stats = store.stats();
  const answers = await Promise.all(stats.ring.map((id) => probeMember(id, timeout, tls)));
  const answering = stats.ring.filter((_, i) => answers[i]);
  const members = stats.members.map((m) => m.member).sort();
  const ejected = stats.members
    .filter((m) => m.ejectedUntil !== undefined)
    .map((m) => m.member)
    .sort();
  const discovery = stats.discovery && {
    healthy: stats.discovery.healthy,
    lookups: stats.discovery.lookups,
    failures: stats.discovery.failures,
    lastRefreshAt: isoTime(stats.discovery.lastSuccessAt),
    lastError: stats.discovery.lastError,
    lastErrorAt: isoTime(stats.discovery.lastErrorAt),
  };
  const detail: Record<string, unknown> = {
    backend: 'memcached',
    members,
    ejected,
    answering,
    ...(discovery && { discovery }),
  };
  if (answering.length > 0) return { answered: true, detail };
  const message =
    members.length === 0
      ? `no memcached members discovered${discovery?.lastError ? ` (${discovery.lastError})` : ''}; every cache read is a miss`
      : ejected.length === members.length
        ? `all ${members.length} memcached members are ejected after repeated failures; every cache read is a miss`
        : `no memcached member answered within ${timeout} ms; every cache read is a miss`;
  return { answered: false, detail: { message, ...detail } };
}

function isoTime(epochMs: number | undefined): string | undefined {
  return epochMs === undefined ? undefined : new Date(epochMs).toISOString();
}
