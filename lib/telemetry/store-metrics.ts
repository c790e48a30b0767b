import type { Attributes, Meter, Observable } from '@opentelemetry/api';
import type { MemberStats, PoolStats } from '../memcached/pool/memcached-pool.js';

/**
 * What the metrics read: the pool's members and ring (a `MemcachedStore` is one). Typed on the
 * pool, which sits below both, so telemetry never imports the store that uses it.
 */
export interface StoreMetricsSource {
  stats(): Pick<PoolStats, 'members' | 'ring'>;
}

type Counted = 'hits' | 'misses' | 'errors' | 'ejections' | 'readmissions';

/** Counters kept per member by the pool, as OpenTelemetry counters. */
const COUNTERS: ReadonlyArray<{ field: Counted; name: string; unit: string; description: string }> =
  [
    {
      field: 'hits',
      name: 'nestjs_k8s.cache.hits',
      unit: '{key}',
      description: 'Keys a memcached member found.',
    },
    {
      field: 'misses',
      name: 'nestjs_k8s.cache.misses',
      unit: '{key}',
      description: 'Keys a memcached member did not hold.',
    },
    {
      field: 'errors',
      name: 'nestjs_k8s.cache.errors',
      unit: '{command}',
      description: 'Commands to a memcached member that failed (they read as misses).',
    },
    {
      field: 'ejections',
      name: 'nestjs_k8s.cache.ejections',
      unit: '{ejection}',
      description: 'Times a memcached member left the ring after consecutive failures.',
    },
    {
      field: 'readmissions',
      name: 'nestjs_k8s.cache.readmissions',
      unit: '{readmission}',
      description:
        'Times an ejected memcached member answered its probe and went back on the ring.',
    },
  ];

/**
 * Observable instruments on `meter` that read `store.stats()` once per collection, so nothing runs
 * on the cache's own paths: `nestjs_k8s.cache.members` (by `state`: `ring` or `ejected`) and, per
 * member (`server.address`, `server.port`), the counters of {@link COUNTERS}. A member's counters
 * start at zero when it joins the pool again. Returns a function that stops the observation.
 */
export function observeStoreMetrics(meter: Meter, store: StoreMetricsSource): () => void {
  const members = meter.createObservableUpDownCounter('nestjs_k8s.cache.members', {
    description: 'Memcached members known, by state: on the ring, or ejected.',
    unit: '{member}',
  });
  const counters = COUNTERS.map((c) =>
    meter.createObservableCounter(c.name, { description: c.description, unit: c.unit }),
  );
  const attributes = new Map<string, Attributes>();
  const callback = (result: {
    observe(observable: Observable, value: number, attributes?: Attributes): void;
  }): void => {
    const stats = store.stats();
    // Pod IPs come and go: forget the attributes of members long gone.
    if (attributes.size > 2 * stats.members.length + 16) attributes.clear();
    result.observe(members, stats.ring.length, { state: 'ring' });
    result.observe(members, stats.members.length - stats.ring.length, { state: 'ejected' });
    for (const member of stats.members) {
      const memberAttributes = attributesOf(attributes, member);
      for (let i = 0; i < COUNTERS.length; i++) {
        result.observe(counters[i], member[COUNTERS[i].field], memberAttributes);
      }
    }
  };
  const observables = [members, ...counters];
  meter.addBatchObservableCallback(callback, observables);
  return () => meter.removeBatchObservableCallback(callback, observables);
}

/** `server.address` and `server.port` of a member id (`host:port`, `[v6]:port`), kept per id. */
function attributesOf(cache: Map<string, Attributes>, member: MemberStats): Attributes {
  let found = cache.get(member.member);
  if (found === undefined) {
    const id = member.member;
    const colon = id.lastIndexOf(':');
    const host = id.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    found = { 'server.address': host, 'server.port': Number(id.slice(colon + 1)) };
    cache.set(id, found);
  }
  return found;
}
