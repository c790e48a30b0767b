// Throughput and latency of every contender on the same memcached members, interleaved.
import { NestFactory } from '@nestjs/core';
import { createCache } from 'cache-manager';
import Keyv from 'keyv';
import KeyvMemcache from '@keyv/memcache';
import Memcached from 'memcached';
import { MemcacheClient } from 'memcache-client';
import { CacheService, K8sModule, MemcachedStore } from '../dist/lib/index.js';
import { Samples, measure, median, progress } from './support.js';

const KEY_COUNT = 1000;
const MGET_KEYS = 100;
const hitKeys = Array.from({ length: KEY_COUNT }, (_, i) => `hit:${i}`);
const missKeys = Array.from({ length: KEY_COUNT }, (_, i) => `miss:${i}`);
const setKeys = Array.from({ length: KEY_COUNT }, (_, i) => `set:${i}`);
/** Ten different 100-key batches of hit keys (spread over every member). */
const mgetBatches = Array.from({ length: 10 }, (_, b) =>
  Array.from({ length: MGET_KEYS }, (_, i) => hitKeys[(b * 97 + i * 7) % KEY_COUNT]),
);

const value100 = 'v'.repeat(100);
const value10k = 'w'.repeat(10_240);
// What Keyv hands an adapter: the value serialized with its expiry. The adapter-level contenders
// all store and return this form, as they would under Keyv (@keyv/memcache parses it on get).
const serialized = (value) => JSON.stringify({ value, expires: null });
const stored100 = serialized(value100);
const stored10k = serialized(value10k);

export const WORKLOADS = [
  { id: 'get-hit', label: 'get hit (100 B)' },
  { id: 'get-miss', label: 'get miss' },
  { id: 'set-100', label: 'set 100 B' },
  { id: 'set-10k', label: 'set 10 KB' },
  { id: 'mget-100', label: `multi-get ${MGET_KEYS} keys` },
];

const promisify =
  (fn) =>
  (...args) =>
    new Promise((resolve, reject) =>
      fn(...args, (error, result) => (error ? reject(error) : resolve(result))),
    );

/**
 * Builds every contender on `members` (the baseline on the first one only). Each has `ops`
 * (workload id → (i) => Promise; a contender may lack some workloads) and `close()`.
 * `before`: the package's exports built from an earlier commit (`--before REF`), measured as
 * one more store on the get workloads.
 */
export async function createContenders(members, { before } = {}) {
  const servers = members.map((m) => m.address);
  const quiet = { log() {}, warn() {}, error() {}, debug() {}, verbose() {} };
  const contenders = [];

  // Baseline: the client we build on, one member, same socket settings as our pool.
  const raw = new MemcacheClient({ server: servers[0], cmdTimeout: 1000, noDelay: true });
  contenders.push({
    id: 'raw',
    label: 'baseline: `memcache-client`, 1 member',
    group: 'baseline',
    ops: {
      'get-hit': (i) => raw.get(hitKeys[i % KEY_COUNT]),
      'get-miss': (i) => raw.get(missKeys[i % KEY_COUNT]),
      'set-100': (i) => raw.set(setKeys[i % KEY_COUNT], stored100),
      'set-10k': (i) => raw.set(setKeys[i % KEY_COUNT], stored10k),
      'mget-100': (i) => raw.get(mgetBatches[i % mgetBatches.length]),
    },
    fill: (key) => raw.set(key, stored100),
    close: () => raw.shutdown(),
  });

  const store = new MemcachedStore({ host: servers.join(','), logger: quiet });
  await store.ready();
  contenders.push({
    id: 'store',
    label: 'ours: `MemcachedStore`',
    group: 'adapter',
    ops: {
      'get-hit': (i) => store.get(hitKeys[i % KEY_COUNT]),
      'get-miss': (i) => store.get(missKeys[i % KEY_COUNT]),
      'set-100': (i) => store.set(setKeys[i % KEY_COUNT], stored100),
      'set-10k': (i) => store.set(setKeys[i % KEY_COUNT], stored10k),
      'mget-100': (i) => store.getMany(mgetBatches[i % mgetBatches.length]),
    },
    fill: (key) => store.set(key, stored100),
    close: () => store.disconnect(),
  });

  // The same store on the baseline's single member: what spreading over 3 members costs.
  const single = new MemcachedStore({ host: servers[0], logger: quiet });
  await single.ready();
  contenders.push({
    id: 'store-1',
    label: 'ours: `MemcachedStore`, 1 member',
    group: 'detail',
    ops: {
      'get-hit': (i) => single.get(hitKeys[i % KEY_COUNT]),
      'get-miss': (i) => single.get(missKeys[i % KEY_COUNT]),
      'set-100': (i) => single.set(setKeys[i % KEY_COUNT], stored100),
      'set-10k': (i) => single.set(setKeys[i % KEY_COUNT], stored10k),
      'mget-100': (i) => single.getMany(mgetBatches[i % mgetBatches.length]),
    },
    fill: (key) => single.set(key, stored100),
    close: () => single.disconnect(),
  });

  // The same store with warm-up and replicas set explicitly (issue 7): what each costs on the
  // get path when no member changes. Default options have warm-up on (2 × refreshInterval).
  const variants = [
    ['store-off', 'ours: `MemcachedStore`, warm-up and replicas off', { warmupPeriod: 0 }],
    [
      'store-warmup',
      'ours: `MemcachedStore`, warmupPeriod on (no change)',
      { warmupPeriod: 60_000 },
    ],
    ['store-replicas', 'ours: `MemcachedStore`, replicas: 2', { warmupPeriod: 0, replicas: 2 }],
  ];
  if (before) {
    variants.push([
      'store-before',
      `ours before: \`MemcachedStore\` at ${before.ref}`,
      {},
      before.exports.MemcachedStore,
    ]);
  }
  for (const [id, label, options, Store = MemcachedStore] of variants) {
    const variant = new Store({ host: servers.join(','), logger: quiet, ...options });
    await variant.ready();
    contenders.push({
      id,
      label,
      group: 'detail',
      ops: {
        'get-hit': (i) => variant.get(hitKeys[i % KEY_COUNT]),
        'get-miss': (i) => variant.get(missKeys[i % KEY_COUNT]),
      },
      fill: (key) => variant.set(key, stored100),
      close: () => variant.disconnect(),
    });
  }

  // As a user would pass it to Keyv: memjs gets every server (it places keys by hash modulo n).
  const keyvMemcache = new KeyvMemcache(servers.join(','));
  contenders.push({
    id: 'keyv-memcache',
    label: 'peer: `@keyv/memcache` (memjs)',
    group: 'adapter',
    ops: {
      'get-hit': (i) => keyvMemcache.get(hitKeys[i % KEY_COUNT]),
      'get-miss': (i) => keyvMemcache.get(missKeys[i % KEY_COUNT]),
      'set-100': (i) => keyvMemcache.set(setKeys[i % KEY_COUNT], stored100),
      'set-10k': (i) => keyvMemcache.set(setKeys[i % KEY_COUNT], stored10k),
      'mget-100': (i) => keyvMemcache.getMany(mgetBatches[i % mgetBatches.length]),
    },
    fill: (key) => keyvMemcache.set(key, stored100),
    close: () => keyvMemcache.client.close(),
  });

  // 3rd-Eden `memcached` with its own ketama ring over the same members, default options.
  const eden = new Memcached(servers);
  const edenGet = promisify(eden.get.bind(eden));
  const edenSet = promisify(eden.set.bind(eden));
  const edenGetMulti = promisify(eden.getMulti.bind(eden));
  contenders.push({
    id: 'eden',
    label: 'peer: `memcached` (3rd-Eden)',
    group: 'adapter',
    ops: {
      'get-hit': (i) => edenGet(hitKeys[i % KEY_COUNT]),
      'get-miss': (i) => edenGet(missKeys[i % KEY_COUNT]),
      'set-100': (i) => edenSet(setKeys[i % KEY_COUNT], stored100, 0),
      'set-10k': (i) => edenSet(setKeys[i % KEY_COUNT], stored10k, 0),
      'mget-100': (i) => edenGetMulti(mgetBatches[i % mgetBatches.length]),
    },
    fill: (key) => edenSet(key, stored100, 0),
    close: () => eden.end(),
  });

  // Ours, full stack, built by the module as an app gets it: CacheService → cache-manager → Keyv → store.
  const app = await NestFactory.createApplicationContext(
    K8sModule.forRoot({ cache: { host: servers.join(','), namespace: 'bench' } }),
    { logger: false },
  );
  const service = app.get(CacheService);
  contenders.push({
    id: 'stack',
    label: 'ours: `CacheService` stack',
    group: 'stack',
    ops: {
      'get-hit': (i) => service.get(hitKeys[i % KEY_COUNT]),
      'get-miss': (i) => service.get(missKeys[i % KEY_COUNT]),
      'set-100': (i) => service.set(setKeys[i % KEY_COUNT], value100),
      'set-10k': (i) => service.set(setKeys[i % KEY_COUNT], value10k),
      'mget-100': (i) => service.mget(mgetBatches[i % mgetBatches.length]),
    },
    fill: (key) => service.set(key, value100),
    close: () => app.close(),
  });

  // The same stack with the peer adapter: cache-manager → Keyv → @keyv/memcache, as documented.
  const peerAdapter = new KeyvMemcache(servers.join(','));
  const peerKeyv = new Keyv({ store: peerAdapter, namespace: 'bench' });
  peerKeyv.on('error', () => undefined);
  const peerCache = createCache({ stores: [peerKeyv] });
  contenders.push({
    id: 'peer-stack',
    label: 'peer: cache-manager + Keyv + `@keyv/memcache`',
    group: 'stack',
    ops: {
      'get-hit': (i) => peerCache.get(hitKeys[i % KEY_COUNT]),
      'get-miss': (i) => peerCache.get(missKeys[i % KEY_COUNT]),
      'set-100': (i) => peerCache.set(setKeys[i % KEY_COUNT], value100),
      'set-10k': (i) => peerCache.set(setKeys[i % KEY_COUNT], value10k),
      'mget-100': (i) => peerCache.mget(mgetBatches[i % mgetBatches.length]),
    },
    fill: (key) => peerCache.set(key, value100),
    close: () => peerAdapter.client.close(),
  });

  for (const contender of contenders) {
    for (let i = 0; i < KEY_COUNT; i += 50) {
      await Promise.all(hitKeys.slice(i, i + 50).map((key) => contender.fill(key)));
    }
  }
  // Every contender must see its hits as hits, or the comparison is void.
  for (const contender of contenders) {
    const found = await contender.ops['get-hit'](0);
    const hit = found != null && !(typeof found === 'object' && found.value === undefined);
    if (!hit) throw new Error(`${contender.id}: a key just filled reads as a miss`);
    if (!contender.ops['mget-100']) continue;
    const many = Object.values(await contender.ops['mget-100'](0));
    const hits = many.filter((v) => v != null && !(typeof v === 'object' && v.value === undefined));
    if (hits.length !== MGET_KEYS) {
      throw new Error(
        `${contender.id}: multi-get found ${hits.length} of ${MGET_KEYS} filled keys`,
      );
    }
  }
  return contenders;
}

/**
 * Every workload at every concurrency: a warm-up per contender, then `rounds` rounds that each
 * run every contender once (rotated start so none always goes first); ops/s is the median
 * over rounds, latency percentiles come from the samples of every round.
 */
export async function runThroughput(everyContender, settings) {
  const { concurrencies, rounds, durationMs, warmupMs } = settings;
  const results = [];
  const workloads = settings.only ? WORKLOADS.filter((w) => w.id === settings.only) : WORKLOADS;
  for (const workload of workloads) {
    const contenders = everyContender.filter((c) => c.ops[workload.id]);
    for (const concurrency of concurrencies) {
      progress(`${workload.id} at concurrency ${concurrency}`);
      const perContender = contenders.map(() => ({
        rates: [],
        cpu: [],
        samples: new Samples(),
        errors: 0,
      }));
      for (const contender of contenders) {
        await measure(contender.ops[workload.id], concurrency, warmupMs);
      }
      for (let round = 0; round < rounds; round++) {
        for (let k = 0; k < contenders.length; k++) {
          const index = (k + round) % contenders.length;
          const run = await measure(
            contenders[index].ops[workload.id],
            concurrency,
            durationMs,
            perContender[index].samples,
          );
          perContender[index].rates.push(run.opsPerSecond);
          perContender[index].cpu.push(run.cpuPerOp);
          perContender[index].errors += run.errors;
        }
      }
      const cell = { workload, concurrency, rows: [] };
      contenders.forEach((contender, index) => {
        const { rates, cpu, samples, errors } = perContender[index];
        cell.rows.push({
          contender,
          opsPerSecond: median(rates),
          cpuPerOp: median(cpu),
          p50: samples.percentile(50),
          p99: samples.percentile(99),
          errors,
        });
      });
      const baseline = cell.rows.find((r) => r.contender.group === 'baseline');
      for (const row of cell.rows) {
        row.ratio = row.opsPerSecond / baseline.opsPerSecond;
        row.cpuRatio = row.cpuPerOp / baseline.cpuPerOp;
      }
      results.push(cell);
    }
  }
  return results;
}
