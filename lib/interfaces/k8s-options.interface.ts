import type { ConnectionOptions } from 'node:tls';
import type { K8sTelemetryOptions } from '../telemetry/telemetry-options.js';

/** Options of the discovering memcached cache (`K8sModule.forRoot({ cache })`). */
export interface K8sCacheOptions {
  /**
   * Where the members are: a DNS name (`mycache-memcached`), `name:port`, an IP literal
   * (`10.0.0.5`, `[fd00::5]:11211`), an SRV name (`_memcache._tcp.mycache.default.svc.cluster.local`, each answer brings
   * its own port) or a comma-separated list of those. Unset: an in-memory store.
   * @default undefined (in-memory store)
   */
  host?: string;
  /** Port for names that carry none. @default 11211 */
  port?: number;
  /**
   * DNS servers (`host` or `host:port`) to query directly instead of the system resolver.
   * @default undefined (system resolver: `/etc/hosts` and search domains honoured)
   */
  dnsServers?: string[];
  /** Periodic re-resolution of `host`, in ms; 0 turns it off. @default 30000 */
  refreshInterval?: number;
  /** Least time between two failure-triggered re-resolutions, in ms. @default 1000 */
  minRefreshInterval?: number;
  /** Give up on one DNS lookup after this many ms (the member list stays). @default 2000 */
  lookupTimeout?: number;
  /** Default time to live of an entry, in ms; 0 = no expiry. @default 0 */
  ttl?: number;
  /**
   * Keyv namespace: prefixes every key and scopes `clear()`. Give each application its own when
   * several share a memcached cluster.
   * @default 'keyv'
   */
  namespace?: string;
  /**
   * How long a process trusts its cached namespace generation, in ms: other processes see a
   * `clear()` this long (plus one round trip) later. Reloads happen in the background.
   * @default 1000
   */
  generationCacheTime?: number;
  /** TCP connect timeout per member, in ms (at most 60000). @default 1000 */
  connectTimeout?: number;
  /** Time one command may take before it counts as a failure, in ms. @default 1000 */
  commandTimeout?: number;
  /** Connections per member. @default 1 */
  maxConnections?: number;
  /**
   * TCP_NODELAY on member connections. Off lets Nagle's algorithm batch small writes (more
   * throughput under heavy concurrency) at the risk of ~40 ms stalls when a value spans an odd
   * number of TCP segments and the server delays its ACK.
   * @default true
   */
  noDelay?: boolean;
  /** Consecutive connection-class failures after which a member leaves the ring. @default 2 */
  failureLimit?: number;
  /** How long an ejected member stays out of the ring before it is tried again, in ms. @default 30000 */
  retryTimeout?: number;
  /**
   * How long the ring before a membership change (a member added, removed, ejected or
   * re-admitted) is kept for warm-up, in ms; 0 turns warm-up off. Meanwhile a read that misses at
   * a key's new owner asks its previous owner (only if that one is still on the ring) and copies
   * the value over with its remaining time to live, so scaling or a restarted pod does not send a
   * burst of misses to the database.
   * @default 2 × refreshInterval (60000 when refreshInterval is 0)
   */
  warmupPeriod?: number;
  /**
   * Members holding each key (1 to 5): the owner and the next distinct members of the ring. Reads
   * fall back to the next copy on a miss or failure, so losing a member costs no misses for keys
   * with a live copy; writes and deletes reach every copy. More than the member count means
   * every member.
   * @default 1
   */
  replicas?: number;
  /**
   * Time every memcached command into per-member latency buckets (`stats().members[i].latency`,
   * and `nestjs_k8s_cache_command_duration_seconds` with `nestjs-k8s/prometheus`). Off by default
   * to keep the get path free of clock reads.
   * @default false
   */
  collectTimings?: boolean;
  /** Largest value (serialized, in bytes) sent to memcached; larger ones fail that set alone. @default 1048000 */
  maxValueSize?: number;
  /**
   * Reach every member over TLS (memcached 1.5.13+ started with `-Z`): `true` trusts the system
   * CAs; an object is passed to `tls.connect` for each member and each health probe (`ca`, `cert`,
   * `key`, `servername`, `minVersion`, ...). The certificate is checked against the member's IP,
   * since members come from DNS as IPs: give the certificate IP SANs, or set `servername` to a
   * DNS name the certificate holds (the Service name). `rejectUnauthorized` is true unless set to
   * false. A member that fails the handshake fails like an unreachable one (`MemcachedTlsError`,
   * then ejection); there is never a plaintext fallback. The handshake counts towards
   * `commandTimeout` (`connectTimeout` bounds the TCP connect only).
   * @default false (plaintext)
   */
  tls?: boolean | ConnectionOptions;
  /**
   * OpenTelemetry through `@opentelemetry/api` (an optional peer): a CLIENT span per command sent
   * to a member and `db.client.operation.duration`, following the database client semantic
   * conventions, plus the pool's counters, through the global tracer and meter (no-ops without an
   * SDK). `false` turns it off; an object chooses `traces`, `metrics` and `recordKeys` (keys are
   * never recorded unless asked). Asking for it explicitly without the API installed is an error.
   * @default on when `@opentelemetry/api` is installed, off otherwise
   */
  telemetry?: boolean | K8sTelemetryOptions;
}

/** Options of `K8sModule.forRoot()`. */
export interface K8sModuleOptions {
  /** The discovering memcached cache; unset or without `host`: an in-memory cache. @default undefined */
  cache?: K8sCacheOptions;
}
