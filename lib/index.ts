// The public API. Everything else under lib/ is internal and may change without notice.

// The module and the cache it provides.
export { K8sModule } from './k8s.module.js';
export { K8S_MEMCACHED_STORE } from './cache/cache.constants.js';
export type {
  K8sModuleOptions,
  K8sCacheOptions,
  K8sLocalCacheOptions,
} from './options/k8s-options.interface.js';
export type { K8sTelemetryOptions } from './telemetry/telemetry-options.js';
export { CacheService } from './cache/cache.service.js';
export type { CacheEntry, CacheStats } from './cache/cache.service.js';
// The cache-manager integration users reach for next to the module.
export { CACHE_MANAGER, CacheInterceptor, CacheKey, CacheTTL } from '@nestjs/cache-manager';

// The Keyv storage adapter, usable without Nest, and where its members come from.
export { MemcachedStore } from './memcached/store/memcached.store.js';
export type {
  MemcachedStoreEvents,
  MemcachedStoreOptions,
  MemcachedStoreStats,
} from './memcached/store/memcached.store.js';
export type { LatencyStats, MemberStats, PoolStats } from './memcached/pool/memcached-pool.js';
export { FixedMembers } from './discovery/fixed-members.js';
export type {
  CommandObserver,
  CommandOutcome as MemberCommandOutcome,
  CommandReason,
  MemberOperation,
} from './memcached/pool/command-observer.js';
export type {
  DiscoveryStats,
  LookupReason,
  LookupResult,
  Member,
  MemberDiff,
  MemberSource,
} from './discovery/member.js';

// Errors: thrown for bad options, emitted as `error` events by the store.
export { K8sError, K8sOptionsError } from './errors/k8s.error.js';
export { OtelApiMissingError } from './telemetry/otel-api-loader.js';
export {
  MemcachedError,
  MemcachedKeyMismatchError,
  MemcachedMemberError,
  MemcachedOversizedValueError,
  MemcachedProtocolError,
  MemcachedReplyError,
  MemcachedTlsError,
  MemcachedUnavailableError,
  MemcachedValueEncodingError,
  MemcachedValueError,
  MemcachedValueTooLargeError,
} from './errors/memcached.errors.js';
export { DnsLookupError, DnsLookupTimeoutError } from './errors/discovery.errors.js';

// Migration coordination (TypeORM is an optional peer: loaded only when a command runs).
export { runK8sCommand } from './migrations/run-command.js';
export { executeK8sCommand } from './migrations/execute-command.js';
export type {
  K8sCommandOptions,
  K8sCommandIo,
  K8sDataSourceInput,
} from './migrations/command-options.js';
export type { CommandTracer, CommandSpan, CommandOutcome } from './migrations/command-tracer.js';
export { checkMigrations, pendingMigrations } from './migrations/migration-check.js';
export type {
  MigrationCheckResult,
  DataSourceMigrationStatus,
  MigrationProblem,
} from './migrations/migration-check.js';
export { runMigrationsLocked } from './migrations/migrate.js';
export type { MigrationLock, MigrationLockOptions } from './migrations/migration-lock.js';
export {
  MigrationFailedError,
  MigrationUsageError,
  MigrationLockTimeoutError,
  MigrationLockUnsupportedError,
} from './errors/migration.errors.js';
