import type { LoggerService } from '@nestjs/common';
import type { ResolvedCacheOptions } from '../../options/cache-options.js';
import { MemcachedMemberError } from '../../errors/memcached.errors.js';
import type { MemcachedError } from '../../errors/memcached.errors.js';
import type { CommandObserver } from '../pool/command-observer.js';
import { MemcachedPool } from '../pool/memcached-pool.js';
import type { PoolPolicy } from '../pool/pool-options.js';

/** Where the store wants to hear of its pool's events. */
export interface PoolEventSink {
  readonly logger: LoggerService;
  readonly logContext: string;
  /** A failed operation: emitted as the store's `error` and logged at a bounded rate. */
  report(error: MemcachedError): void;
  /** A member broke: the member list may be stale. */
  requestRefresh(reason: string): void;
  ejected(member: string, error: MemcachedMemberError): void;
  readmitted(member: string, stale: boolean): void;
}

/**
 * The store's pool: built from the cache options resolved once, with the store's policies, and
 * its events logged and handed to `sink`.
 */
export function createStorePool(
  resolved: ResolvedCacheOptions,
  commandObserver: CommandObserver | undefined,
  policy: PoolPolicy,
  sink: PoolEventSink,
): MemcachedPool {
  const pool = new MemcachedPool({
    connectTimeout: resolved.connectTimeout,
    commandTimeout: resolved.commandTimeout,
    maxConnections: resolved.maxConnections,
    noDelay: resolved.noDelay,
    protocol: resolved.protocol,
    // Only stale marks (staleOnDelete) need the meta multi-get; text is cheaper per key.
    metaMultiGet: resolved.staleOnDelete > 0,
    tls: resolved.tls,
    collectTimings: resolved.collectTimings,
    failureLimit: resolved.failureLimit,
    retryTimeout: resolved.retryTimeout,
    // One endpoint in front of a fleet: never ejected, reconnects with back-off.
    endpointMode: resolved.discovery === 'endpoint',
    warmupPeriod: resolved.warmupPeriod,
    replicas: resolved.replicas,
    trackedKeys: resolved.trackedKeys,
    maxValueSize: resolved.maxValueSize,
    commandObserver,
    policy,
  });
  const { logger, logContext } = sink;
  pool.on('failure', (error) => sink.report(error));
  pool.on('memberFailure', (member, error) =>
    sink.requestRefresh(`memcached member ${member}: ${causeOf(error)}`),
  );
  pool.on('eject', (member, error) => {
    logger.warn(
      `memcached member ${member} ejected from the ring after ${resolved.failureLimit} consecutive ` +
        `failures (last: ${causeOf(error)}); its keys go to the next member, and it is probed ` +
        `after ${resolved.retryTimeout} ms (longer while it keeps failing) until it answers`,
      logContext,
    );
    sink.ejected(member, error);
  });
  pool.on('readmit', (member, stale) => {
    logger.log(
      `memcached member ${member} answers again and is back on the ring` +
        (stale
          ? ' with the entries it kept; the keys this process wrote elsewhere meanwhile are cleared on it first'
          : ''),
      logContext,
    );
    sink.readmitted(member, stale);
  });
  return pool;
}

function causeOf(error: MemcachedError): string {
  const cause = error instanceof MemcachedMemberError ? error.cause : error.message;
  return cause instanceof Error ? cause.message : String(cause);
}
