// Throughput of the cache stack against raw memcache-client, measured side by side in one run
// on one real memcached, plus key movement of the ring when a member is added.
// Run with `npm run bench` (builds first). Bounded: each round stops after OPS operations.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createCache } from 'cache-manager';
import Keyv from 'keyv';
import KeyvMemcache from '@keyv/memcache';
import { MemcacheClient } from 'memcache-client';
import { MemcachedStore } from '../dist/lib/index.js';
import { memberId } from '../dist/lib/discovery/member.js';
import { HashRing } from '../dist/lib/memcached/hash-ring.js';

const HOST = '127.0.0.2';
const CONCURRENCY = 64;
const OPS = Number(process.env.BENCH_OPS ?? 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const VALUE = JSON.stringify({ id: 42, name: 'a typical cached object', tags: ['a', 'b', 'c'] });
const KEYS = Array.from({ length: 1000 }, (_, i) => `bench:item:${i}`);

async function freePort(host) {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function startMemcached() {
  const port = await freePort(HOST);
  const child = spawn(
    'memcached',
    ['-u', 'root', '-l', HOST, '-p', String(port), '-U', '0', '-m', '256', '-t', '1'],
    {
      stdio: 'ignore',
    },
  );
  const client = new MemcacheClient({ server: `${HOST}:${port}`, connectTimeout: 200 });
  for (let i = 0; i < 50; i++) {
    try {
      await client.version();
      client.shutdown();
      return { child, port };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  child.kill();
  throw new Error('memcached did not start (is it installed? apt-get install memcached)');
}

/** Runs OPS calls of `op(i)` from CONCURRENCY callers; returns ops per second. */
async function measure(op) {
  let next = 0;
  const started = process.hrtime.bigint();
  const worker = async () => {
    while (next < OPS) await op(next++);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return OPS / seconds;
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function main() {
  const { child, port } = await startMemcached();
  const server = `${HOST}:${port}`;
  try {
    // Same socket settings as our pool (TCP_NODELAY: no Nagle stalls on values just over one segment).
    const raw = new MemcacheClient({ server, cmdTimeout: 1000, noDelay: true });
    const quiet = { log() {}, warn() {}, error() {} };
    const store = new MemcachedStore({ host: server, logger: quiet });
    await store.ready();
    const cache = createCache({ stores: [new Keyv({ store, namespace: 'bench' })] });
    // The same stack with Nagle's algorithm on (`noDelay: false`), as memjs runs by default.
    const nagleStore = new MemcachedStore({ host: server, logger: quiet, noDelay: false });
    await nagleStore.ready();
    const nagleCache = createCache({
      stores: [new Keyv({ store: nagleStore, namespace: 'bench' })],
    });
    // Today's usual Nest stack for memcached, for comparison.
    const reference = new KeyvMemcache(server);
    const referenceCache = createCache({
      stores: [new Keyv({ store: reference, namespace: 'bench' })],
    });
    const value = { id: 42, name: 'a typical cached object', tags: ['a', 'b', 'c'] };
    for (const key of KEYS) {
      await raw.set(key, VALUE);
      await store.set(key, VALUE);
      await cache.set(key, value);
      await nagleCache.set(key, value);
      await referenceCache.set(key, value);
    }

    const variants = {
      'raw memcache-client': {
        get: (i) => raw.get(KEYS[i % KEYS.length]),
        set: (i) => raw.set(KEYS[i % KEYS.length], VALUE),
      },
      'MemcachedStore (Keyv adapter)': {
        get: (i) => store.get(KEYS[i % KEYS.length]),
        set: (i) => store.set(KEYS[i % KEYS.length], VALUE),
      },
      'CacheService stack (cache-manager + Keyv + MemcachedStore)': {
        get: (i) => cache.get(KEYS[i % KEYS.length]),
        set: (i) => cache.set(KEYS[i % KEYS.length], value),
      },
      'CacheService stack, noDelay: false': {
        get: (i) => nagleCache.get(KEYS[i % KEYS.length]),
        set: (i) => nagleCache.set(KEYS[i % KEYS.length], value),
      },
      'cache-manager + Keyv + @keyv/memcache (reference)': {
        get: (i) => referenceCache.get(KEYS[i % KEYS.length]),
        set: (i) => referenceCache.set(KEYS[i % KEYS.length], value),
      },
    };
    const results = {};
    for (const kind of ['get', 'set']) {
      // Warm-up, then interleaved rounds so drift hits every variant alike.
      for (const variant of Object.values(variants)) await measure(variant[kind]);
      for (let round = 0; round < ROUNDS; round++) {
        for (const [name, variant] of Object.entries(variants)) {
          ((results[name] ??= {})[kind] ??= []).push(await measure(variant[kind]));
        }
      }
    }

    console.log(
      `memcached ${server}, ${CONCURRENCY} concurrent callers, ${OPS} ops per round, median of ${ROUNDS} rounds`,
    );
    const rawGet = median(results['raw memcache-client'].get);
    const rawSet = median(results['raw memcache-client'].set);
    console.log(
      'variant'.padEnd(62),
      'gets/s'.padStart(9),
      'x raw'.padStart(7),
      'sets/s'.padStart(9),
      'x raw'.padStart(7),
    );
    for (const [name, { get, set }] of Object.entries(results)) {
      const g = median(get);
      const s = median(set);
      console.log(
        name.padEnd(62),
        Math.round(g).toString().padStart(9),
        (g / rawGet).toFixed(2).padStart(7),
        Math.round(s).toString().padStart(9),
        (s / rawSet).toFixed(2).padStart(7),
      );
    }

    raw.shutdown();
    await store.disconnect();
    await nagleStore.disconnect();
    reference.client.close();
  } finally {
    child.kill();
  }

  // Placement: how many of 100,000 keys change member when a 4th member joins 3.
  const members = (n) =>
    Array.from({ length: n }, (_, i) => ({ host: `10.0.0.${i + 1}`, port: 11211 }));
  const three = new HashRing(members(3));
  const four = new HashRing(members(4));
  let movedRing = 0;
  let movedModulo = 0;
  const total = 100_000;
  for (let i = 0; i < total; i++) {
    const key = `placement:${i}`;
    if (memberId(three.get(key)) !== memberId(four.get(key))) movedRing++;
    let h = 0;
    for (let c = 0; c < key.length; c++) h = (h * 31 + key.charCodeAt(c)) >>> 0;
    if (h % 3 !== h % 4) movedModulo++;
  }
  console.log(
    `keys moved on 3 -> 4 members: ketama ring ${((100 * movedRing) / total).toFixed(1)} % (ideal 25 %), modulo ${((100 * movedModulo) / total).toFixed(1)} %`,
  );
}

await main();
