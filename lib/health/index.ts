// `nestjs-k8s/health`: Terminus health indicators and the graceful shutdown. A subpath of its own
// because @nestjs/terminus is an optional peer: apps without it import `nestjs-k8s` and never
// load it.
export { K8sHealthModule } from './k8s-health.module.js';
export { MemcachedHealthIndicator } from './memcached.health.js';
export type { MemcachedHealthOptions } from './memcached.health.js';
export { MigrationsHealthIndicator } from './migrations.health.js';
export type { MigrationsHealthOptions } from './migrations.health.js';
export type { CheckedDataSource } from '../migrations/migration-check.js';
export { ShutdownHealthIndicator } from './shutdown.health.js';
export { enableGracefulShutdown } from './graceful-shutdown.js';
export type { GracefulShutdown, GracefulShutdownOptions } from './graceful-shutdown.js';
