// The contenders and workloads of the throughput bench. Each contender is built on its own, with
// only the packages it needs imported, so a fresh process measuring one of them (bench/cell.js)
// loads nothing of the others: a shared heap, JIT and GC is what made the interleaved table lie.

export const KEY_COUNT = 1000;
export const MGET_KEYS = 100;
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

const GET_ONLY = ['get-hit', 'get-miss'];
const READS = [...GET_ONLY, 'mget-100'];
/** What `store-before` measures: the reads and the small set (the store's hot paths). */
const HOT_PATHS = [...READS, 'set-100'];
const quiet = { log() {}, warn() {}, error() {}, debug() {}, verbose() {} };

const promisify =
  (fn) =>
  (...args) =>
    new Promise((resolve, reject) =>
      fn(...args, (error, result) => (error ? reject(error) : resolve(result))),
    );

/** The five workloads on an adapter-level `get`/`set`/`getMany` (Keyv's serialized values). */
const adapterOps = (get, set, getMany) => ({
  'get-hit': (i) => get(hitKeys[i % KEY_COUNT]),
  'get-miss': (i) => get(missKeys[i % KEY_COUNT]),
  'set-100': (i) => set(setKeys[i % KEY_COUNT], stored100),
  'set-10k': (i) => set(setKeys[i % KEY_COUNT], stored10k),
  'mget-100': (i) => getMany(mgetBatches[i % mgetBatches.length]),
});

/** The same at stack level (what an app calls: plain values, the stack serializes). */
const stackOps = (cache) => ({
  'get-hit': (i) => cache.get(hitKeys[i % KEY_COUNT]),
  'get-miss': (i) => cache.get(missKeys[i % KEY_COUNT]),
  'set-100': (i) => cache.set(setKeys[i % KEY_COUNT], value100),
  'set-10k': (i) => cache.set(setKeys[i % KEY_COUNT], value10k),
  'mget-100': (i) => cache.mget(mgetBatches[i % mgetBatches.length]),
});

const pick = (ops, ids) => Object.fromEntries(ids.map((id) => [id, ops[id]]));

/** This checkout's dist, or (`--before REF`) the one built from an earlier commit. */
const library = (before) => import(before ? before.index : '../dist/lib/index.js');

/**
 * Timeouts for a process run under valgrind (about 50 times slower): at the defaults, gets time
 * out and take the miss path, and what is counted is no longer the hit path.
 */
const SLOW_TIMEOUTS = { commandTimeout: 60_000, connectTimeout: 60_000 };

/**
 * A `MemcachedStore` contender with `options`; `getOnly`: the get workloads only; `reads`: the
 * get and multi-get workloads; `hotPaths`: those and the small set; `slow`: long timeouts (under
 * valgrind).
 */
async function storeContender(servers, options, { before, getOnly, reads, hotPaths, slow } = {}) {
  const { MemcachedStore } = await library(before);
  const store = new MemcachedStore({
    host: servers.join(','),
    logger: quiet,
    ...options,
    ...(slow && SLOW_TIMEOUTS),
  });
  await store.ready();
  const ops = adapterOps(
    (key) => store.get(key),
    (key, value) => store.set(key, value),
    (keys) => store.getMany(keys),
  );
  return {
    ops: hotPaths
      ? pick(ops, HOT_PATHS)
      : getOnly || reads
        ? pick(ops, reads ? READS : GET_ONLY)
        : ops,
    fill: (key) => store.set(key, stored100),
    close: () => store.disconnect(),
  };
}

/** Built by the module as an app gets it: CacheService → cache-manager → Keyv → store. */
async function stackContender(servers, { slow } = {}) {
  const [{ NestFactory }, { CacheService, K8sModule }] = await Promise.all([
    import('@nestjs/core'),
    import('../dist/lib/index.js'),
  ]);
  const app = await NestFactory.createApplicationContext(
    K8sModule.forRoot({
      cache: { host: servers.join(','), namespace: 'bench', ...(slow && SLOW_TIMEOUTS) },
    }),
    { logger: false },
  );
  const service = app.get(CacheService);
  return {
    ops: stackOps(service),
    fill: (key) => service.set(key, value100),
    close: () => app.close(),
  };
}

/**
 * Every contender by id: label, group (baseline, adapter, stack or detail: the detail rows are
 * opt-in, `--contenders`), `workloads` when it lacks some, and `build(servers, { before, slow })`,
 * which returns `{ ops, fill, close }`. The order here is the order of the tables.
 */
export const CONTENDERS = [
  {
    id: 'raw',
    label: 'baseline: `memcache-client`, 1 member',
    group: 'baseline',
    // The client we build on, one member, same socket settings as our pool.
    async build(servers) {
      const { MemcacheClient } = await import('memcache-client');
      const raw = new MemcacheClient({ server: servers[0], cmdTimeout: 1000, noDelay: true });
      return {
        ops: adapterOps(
          (key) => raw.get(key),
          (key, value) => raw.set(key, value),
          (keys) => raw.get(keys),
        ),
        fill: (key) => raw.set(key, stored100),
        close: () => raw.shutdown(),
      };
    },
  },
  {
    id: 'store',
    label: 'ours: `MemcachedStore`',
    group: 'adapter',
    build: (servers, context) => storeContender(servers, {}, context),
  },
  {
    id: 'stack',
    label: 'ours: `CacheService` stack',
    group: 'stack',
    build: (servers, context) => stackContender(servers, context),
  },
  {
    id: 'keyv-memcache',
    label: 'peer: `@keyv/memcache` (memjs)',
    group: 'adapter',
    // As a user would pass it to Keyv: memjs gets every server (it places keys by hash modulo n).
    async build(servers) {
      const { default: KeyvMemcache } = await import('@keyv/memcache');
      const adapter = new KeyvMemcache(servers.join(','));
      return {
        ops: adapterOps(
          (key) => adapter.get(key),
          (key, value) => adapter.set(key, value),
          (keys) => adapter.getMany(keys),
        ),
        fill: (key) => adapter.set(key, stored100),
        close: () => adapter.client.close(),
      };
    },
  },
  {
    id: 'peer-stack',
    label: 'peer: cache-manager + Keyv + `@keyv/memcache`',
    group: 'stack',
    // The stack the Nest docs suggest: cache-manager → Keyv → @keyv/memcache.
    async build(servers) {
      const [{ createCache }, { default: Keyv }, { default: KeyvMemcache }] = await Promise.all([
        import('cache-manager'),
        import('keyv'),
        import('@keyv/memcache'),
      ]);
      const adapter = new KeyvMemcache(servers.join(','));
      const keyv = new Keyv({ store: adapter, namespace: 'bench' });
      keyv.on('error', () => undefined);
      const cache = createCache({ stores: [keyv] });
      return {
        ops: stackOps(cache),
        fill: (key) => cache.set(key, value100),
        close: () => adapter.client.close(),
      };
    },
  },
  {
    id: 'eden',
    label: 'peer: `memcached` (3rd-Eden)',
    group: 'adapter',
    // Its own ketama ring over the same members, default options (10 connections per server).
    async build(servers) {
      const { default: Memcached } = await import('memcached');
      const eden = new Memcached(servers);
      const set = promisify(eden.set.bind(eden));
      return {
        ops: adapterOps(
          promisify(eden.get.bind(eden)),
          (key, value) => set(key, value, 0),
          promisify(eden.getMulti.bind(eden)),
        ),
        fill: (key) => set(key, stored100, 0),
        close: () => eden.end(),
      };
    },
  },
  {
    id: 'memcache',
    label: 'peer: `memcache` 1.10 (jaredwray)',
    group: 'adapter',
    // Its own ketama ring over the same members, default options; `gets` is its multi-get (a Map).
    async build(servers) {
      const { Memcache } = await import('memcache');
      const client = new Memcache({ nodes: servers, timeout: 1000 });
      await client.connect();
      return {
        ops: adapterOps(
          (key) => client.get(key),
          (key, value) => client.set(key, value, 0),
          async (keys) => {
            const found = await client.gets(keys);
            return keys.map((key) => found.get(key));
          },
        ),
        fill: (key) => client.set(key, stored100, 0),
        close: () => client.disconnect(),
      };
    },
  },
  {
    id: 'store-text',
    label: 'ours: `MemcachedStore`, `protocol: text`',
    group: 'adapter',
    // The same store on text commands only: the meta path's cost against the text path's.
    build: (servers, context) => storeContender(servers, { protocol: 'text' }, context),
  },
  {
    id: 'store-meta-mget',
    workloads: ['mget-100'],
    label: 'ours: `MemcachedStore`, `staleOnDelete` (multi-gets as a meta pipeline)',
    group: 'detail',
    // What a multi-get costs as a quiet `mg` pipeline, which only `staleOnDelete` needs.
    build: (servers, context) =>
      storeContender(servers, { staleOnDelete: 60_000 }, { ...context, reads: true }),
  },
  {
    id: 'store-1',
    label: 'ours: `MemcachedStore`, 1 member',
    group: 'detail',
    // On the baseline's single member: the difference to `store` is what spreading costs.
    build: (servers, context) => storeContender(servers.slice(0, 1), {}, context),
  },
  {
    id: 'stack-1',
    label: 'ours: `CacheService` stack, 1 member',
    group: 'detail',
    // On the baseline's single member: the layers' cost without the spreading's.
    build: (servers, context) => stackContender(servers.slice(0, 1), context),
  },
  {
    id: 'store-off',
    workloads: GET_ONLY,
    label: 'ours: `MemcachedStore`, warm-up and replicas off',
    group: 'detail',
    build: (servers, context) =>
      storeContender(servers, { warmupPeriod: 0 }, { ...context, getOnly: true }),
  },
  {
    id: 'store-warmup',
    workloads: GET_ONLY,
    label: 'ours: `MemcachedStore`, warmupPeriod on (no change)',
    group: 'detail',
    build: (servers, context) =>
      storeContender(servers, { warmupPeriod: 60_000 }, { ...context, getOnly: true }),
  },
  {
    id: 'store-replicas',
    workloads: GET_ONLY,
    label: 'ours: `MemcachedStore`, replicas: 2',
    group: 'detail',
    build: (servers, context) =>
      storeContender(servers, { warmupPeriod: 0, replicas: 2 }, { ...context, getOnly: true }),
  },
  {
    id: 'store-before',
    workloads: HOT_PATHS,
    label: 'ours before: `MemcachedStore` at `--before`',
    group: 'detail',
    // lib/ as built from an earlier commit (`--before REF`), defaults, the reads and small sets.
    needsBefore: true,
    build: (servers, context) => storeContender(servers, {}, { ...context, hotPaths: true }),
  },
];

/** Whether contender `spec` has `workload`. */
export const hasWorkload = (spec, workload) => !spec.workloads || spec.workloads.includes(workload);

export function contenderById(id) {
  const contender = CONTENDERS.find((c) => c.id === id);
  if (!contender) {
    throw new Error(`no contender ${id}: ${CONTENDERS.map((c) => c.id).join(', ')}`);
  }
  return contender;
}

/**
 * Builds contender `id` on `servers` (the baseline uses the first only), fills the hit keys
 * through its own path and checks it reads them back as hits (or the comparison is void).
 * `slow`: long timeouts, for a process under valgrind.
 */
export async function buildContender(id, servers, { before, slow } = {}) {
  const spec = contenderById(id);
  if (spec.needsBefore && !before) throw new Error(`${id} needs --before REF`);
  // Only the contender that measures an earlier build loads it; the others, this checkout's.
  const built = await spec.build(servers, { before: spec.needsBefore ? before : undefined, slow });
  const contender = { ...spec, ...built };
  for (let i = 0; i < KEY_COUNT; i += 50) {
    await Promise.all(hitKeys.slice(i, i + 50).map((key) => contender.fill(key)));
  }
  const isHit = (v) => v != null && !(typeof v === 'object' && v.value === undefined);
  if (!isHit(await contender.ops['get-hit'](0))) {
    throw new Error(`${id}: a key just filled reads as a miss`);
  }
  if (contender.ops['mget-100']) {
    const hits = Object.values(await contender.ops['mget-100'](0)).filter(isHit).length;
    if (hits !== MGET_KEYS) {
      throw new Error(`${id}: multi-get found ${hits} of ${MGET_KEYS} filled keys`);
    }
  }
  return contender;
}
