// One application process ("pod") of bench/stampede.js: `callers` concurrent callers loop on
// one contender's wrap (or get-or-compute) of one hot key whose loader takes `loaderMs`, from
// `startAt` for `durationMs`, each pausing `thinkMs` between calls. Reports over IPC: loader
// calls, calls, calls that waited for a loader (latency ≥ half the loader's time), split into
// those before this pod's first value and after, latency samples, errors and wrong values.
import { Samples, sleep } from './support.js';

const job = JSON.parse(process.argv[2] ?? 'null');
if (!job?.contender || !job.servers) throw new Error('usage: forked by bench/stampede.js');
const { contender, servers, namespace, key, ttl, loaderMs, callers, thinkMs, pod } = job;

let loaderCalls = 0;
/** What every loader returns: whose call it was. A value of any other shape is a wrong value. */
async function loader() {
  const call = ++loaderCalls;
  await sleep(loaderMs);
  return { value: `hot-${pod}-${call}` };
}
const isRight = (result) =>
  result !== null &&
  typeof result === 'object' &&
  typeof result.value === 'string' &&
  /^hot-\d+-\d+$/.test(result.value);

/** The contender's `wrap(key, loader, ttl)` and its `close()`. */
async function build() {
  if (contender.startsWith('ours')) {
    const [{ NestFactory }, { CacheService, K8sModule }] = await Promise.all([
      import('@nestjs/core'),
      import('../dist/lib/index.js'),
    ]);
    const options = {
      'ours-off': { leaseTtl: 0 },
      'ours-lease': {},
      'ours-swr': { staleWhileRevalidate: ttl },
    }[contender];
    const app = await NestFactory.createApplicationContext(
      K8sModule.forRoot({ cache: { host: servers.join(','), namespace, ...options } }),
      { logger: false },
    );
    const service = app.get(CacheService);
    await service.get('warm-up');
    return { wrap: () => service.wrap(key, loader, ttl), close: () => app.close() };
  }
  if (contender === 'peer-stack') {
    const [{ createCache }, { default: Keyv }, { default: KeyvMemcache }] = await Promise.all([
      import('cache-manager'),
      import('keyv'),
      import('@keyv/memcache'),
    ]);
    const adapter = new KeyvMemcache(servers.join(','));
    const keyv = new Keyv({ store: adapter, namespace });
    keyv.on('error', () => undefined);
    const cache = createCache({ stores: [keyv] });
    await cache.get('warm-up');
    return { wrap: () => cache.wrap(key, loader, ttl), close: () => adapter.client.close() };
  }
  if (contender === 'memcache') {
    // No wrap in `memcache` 1.10: get, and on a miss load (one load per process at a time) and
    // set, as a careful user would write it.
    const { Memcache } = await import('memcache');
    const client = new Memcache({ nodes: servers, timeout: 1000 });
    await client.connect();
    const fullKey = `${namespace}:${key}`;
    let loading;
    const wrap = async () => {
      const found = await client.get(fullKey);
      if (found !== undefined && found !== null) return JSON.parse(found);
      loading ??= (async () => {
        const value = await loader();
        await client.set(fullKey, JSON.stringify(value), Math.ceil(ttl / 1000));
        return value;
      })().finally(() => (loading = undefined));
      return loading;
    };
    return { wrap, close: () => client.disconnect() };
  }
  throw new Error(`no stampede contender ${contender}`);
}

const built = await build();
process.send({ type: 'ready' });
process.once('message', async ({ startAt, durationMs }) => {
  const wait = startAt - Date.now();
  if (wait > 0) await sleep(wait);
  const samples = new Samples();
  const deadline = performance.now() + durationMs;
  const waitedMs = loaderMs / 2;
  let calls = 0;
  let errors = 0;
  let wrong = 0;
  let firstValueAt = Infinity;
  let waitedFirst = 0;
  let waitedAfter = 0;
  const caller = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      calls++;
      try {
        const result = await built.wrap();
        if (!isRight(result)) wrong++;
        else if (firstValueAt === Infinity) firstValueAt = performance.now();
      } catch {
        errors++;
      }
      const took = performance.now() - t0;
      samples.add(took * 1000);
      if (took >= waitedMs) {
        if (t0 < firstValueAt) waitedFirst++;
        else waitedAfter++;
      }
      await sleep(thinkMs);
    }
  };
  await Promise.all(Array.from({ length: callers }, caller));
  await built.close();
  const n = Math.min(samples.count, samples.values.length);
  // Exit once the message is out: a large one is still being written when send() returns.
  process.send(
    {
      type: 'done',
      loaderCalls,
      calls,
      errors,
      wrong,
      waitedFirst,
      waitedAfter,
      samples: Array.from(samples.values.subarray(0, n)),
    },
    () => process.exit(0),
  );
});
