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
   * How the members of `host` are found: `'dns'` resolves it (A/AAAA or SRV records, see `host`);
   * `'elasticache'` takes `host` as an ElastiCache for Memcached configuration endpoint
   * (`name[:port]`) and follows the node list it gives (auto discovery, `config get cluster`);
   * `'memorystore'` takes it as a Memorystore for Memcached discovery endpoint (`ip[:port]`, never
   * used for data) and follows its node list; `'endpoint'` takes it as one endpoint in front of a
   * fleet (ElastiCache Serverless, mcrouter, twemproxy): one member, never ejected, reconnected
   * with a bounded back-off.
   * @default 'dns'
   */
  discovery?: 'dns' | 'elasticache' | 'memorystore' | 'endpoint';
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
   * How long a process uses its namespace generation without asking the members, in ms: no
   * process, busy or idle, reads what a `clear()` replaced later than this (plus one round trip)
   * after it resolved. Busy processes reload it in the background.
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
   * Keys whose latest write this process remembers (about 100 bytes each), so that when members
   * come and go it clears older copies on a key's new owner instead of serving them. When more
   * keys are written, a change of members starts a new namespace generation instead. 0: remember
   * none. @default 100000
   */
  trackedKeys?: number;
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
  /**
   * Largest value (serialized, in bytes) sent to memcached; larger ones fail that set alone, and
   * larger ones read (another process's higher limit) are misses. @default 1048000
   */
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
   * Background refresh for `wrap`, in ms (as `CacheModule.register({ refreshThreshold })`): a
   * `wrap` hit whose remaining time to live is below this returns the cached value at once and runs
   * the function again in the background to store a fresh one (in every tier). 0 turns it off; it
   * must be less than `ttl` when `ttl` is set. Only entries with a time to live can be refreshed.
   * @default 0 (off)
   */
  refreshThreshold?: number;
  /**
   * cache-manager's `nonBlocking`: `set`, `mset`, `del` and `clear` resolve without waiting for
   * every tier, and `get`/`mget` answer with whichever tier answers first (with `local`, that is
   * the local tier: a local miss is then a miss even if memcached holds the key).
   * @default false
   */
  nonBlocking?: boolean;
  /**
   * An in-process first tier in front of memcached (a bounded LRU per process); a hit costs no
   * memcached round trip. `set`, `mset` and `wrap` fill it (a `get` that memcached answers does
   * not, as in cache-manager's multi-store). Trade-off: a value another pod changed or deleted is
   * served stale here for up to `local.ttl`. `del` and `clear` reach both tiers of the instance
   * that calls them.
   * @default undefined (off)
   */
  local?: K8sLocalCacheOptions;
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

/** The in-process first tier (`cache.local`). */
export interface K8sLocalCacheOptions {
  /** Most entries kept; the least recently used goes first. @default 1000 */
  max?: number;
  /**
   * Longest time an entry stays in this tier, in ms, whatever the cache `ttl` (an entry's own
   * shorter ttl still applies): the bound on how stale a local hit can be.
   * @default 5000
   */
  ttl?: number;
}

/** Options of `K8sModule.forRoot()`. */
export interface K8sModuleOptions {
  /** The discovering memcached cache; unset or without `host`: an in-memory cache. @default undefined */
  cache?: K8sCacheOptions;
}
