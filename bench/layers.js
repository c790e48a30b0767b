// What each layer above the store costs per get, without I/O (not part of `npm run bench`): the
// stack K8sModule builds without a host (CacheService → cache-manager → Keyv → an in-memory Map,
// the same providers and Keyv wiring as with memcached), each layer called on its own with one
// caller, sequential awaits; CPU time of this process (not wall time: other processes may hold
// the cores), best of several passes.
//   node bench/layers.js [calls per pass, default 200000] [passes, default 9]
// The differences between rows are the layers' own costs: Keyv over the Map, cache-manager over
// Keyv, CacheService over cache-manager.
import { CACHE_MANAGER } from '@nestjs/cache-manager';
import { NestFactory } from '@nestjs/core';
import { CacheService, K8sModule } from '../dist/lib/index.js';
import { K8S_CACHE_KEYV } from '../dist/lib/cache/cache.constants.js';

const [calls = '200000', passes = '9'] = process.argv.slice(2);
const app = await NestFactory.createApplicationContext(
  K8sModule.forRoot({ cache: { namespace: 'bench' } }),
  { logger: false },
);
const service = app.get(CacheService);
const cache = app.get(CACHE_MANAGER);
const keyv = app.get(K8S_CACHE_KEYV, { strict: false });
const keys = Array.from({ length: 1000 }, (_, i) => `hit:${i}`);
for (const key of keys) await service.set(key, 'v'.repeat(100));
const map = keyv.opts.store;
const stored = keys.map((key) => keyv._getKeyPrefix(key));
if (typeof map.get(stored[0]) !== 'string') throw new Error('the Map does not hold the entry');

const layers = [
  // An async function awaiting the Map: the floor any promise-returning adapter pays.
  ['Map behind an async adapter', async (i) => map.get(stored[i % 1000])],
  ['Keyv (as K8sModule configures it)', (i) => keyv.get(keys[i % 1000])],
  ['cache-manager → Keyv', (i) => cache.get(keys[i % 1000])],
  ['CacheService → cache-manager → Keyv', (i) => service.get(keys[i % 1000])],
];
const n = Number(calls);
const best = new Map(layers.map(([name]) => [name, Infinity]));
for (let pass = 0; pass < Number(passes); pass++) {
  for (const [name, get] of layers) {
    const cpu = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      if ((await get(i)) === undefined) throw new Error(`${name}: a miss`);
    }
    const used = process.cpuUsage(cpu);
    best.set(name, Math.min(best.get(name), ((used.user + used.system) * 1e3) / n));
  }
}
let previous;
for (const [name] of layers) {
  const ns = best.get(name);
  const own = previous === undefined ? '' : `  (+${(ns - previous).toFixed(0)} ns this layer)`;
  console.log(`${name.padEnd(40)} ${ns.toFixed(0).padStart(6)} ns per get${own}`);
  previous = ns;
}
await app.close();
