// What OpenTelemetry costs on the get path: each variant measured in its own fresh process,
// variants interleaved round by round, on one memcached member on loopback.
//
//   node bench/telemetry.js [--rounds 5] [--seconds 3] [--concurrency 64] [--emulate]
//     [--variants absent,api,sdk] [--workloads get-hit,mget-100]
//
// Variants: `absent` (@opentelemetry/api cannot be resolved: no observer), `off` (installed, but
// `telemetry: false`), `api` (the API is
// installed, no SDK registered: spans and the histogram are no-ops), `sdk` (the real SDK records:
// spans batched to an exporter that drops them, the duration histogram kept by a MeterProvider).
// `--emulate`: the store's own observer is not used; the bench calls the same observer around
// each store operation instead (one command per operation, as the pool would), for builds whose
// pool does not call it yet. Needs `npm run build` first.
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { measure, median, progress, startMemcached, commonFreePort, stopAll } from './support.js';

const ALL_VARIANTS = ['absent', 'off', 'api', 'sdk'];
const ALL_WORKLOADS = ['get-hit', 'mget-100'];
const KEY_COUNT = 1000;
const MGET_KEYS = 100;

const { values: args } = parseArgs({
  options: {
    variant: { type: 'string' },
    server: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '64' },
    emulate: { type: 'boolean', default: false },
    variants: { type: 'string', default: ALL_VARIANTS.join(',') },
    workloads: { type: 'string', default: ALL_WORKLOADS.join(',') },
  },
});
// `--variants absent,api --workloads get-hit`: a focused A/B (absent must stay in: the reference).
const VARIANTS = ALL_VARIANTS.filter((v) => args.variants.split(',').includes(v));
const WORKLOADS = ALL_WORKLOADS.filter((w) => args.workloads.split(',').includes(w));

// Run by the parent in a fresh process: make @opentelemetry/api unresolvable for `require`, the way
// an app without it is (the package loads it with createRequire).
const BLOCK_API = `data:text/javascript,${encodeURIComponent(`
import Module from 'node:module';
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === '@opentelemetry/api') {
    throw Object.assign(new Error("Cannot find module '@opentelemetry/api'"), { code: 'MODULE_NOT_FOUND' });
  }
  return resolve.call(this, request, ...rest);
};
`)}`;

async function parent() {
  const rounds = Number(args.rounds);
  const port = await commonFreePort(['127.0.0.1']);
  const member = await startMemcached('127.0.0.1', port);
  progress(`memcached on ${member.address}; ${rounds} rounds of ${VARIANTS.join(', ')}`);
  const results = [];
  try {
    for (let round = 0; round < rounds; round++) {
      // Rotated each round, so no variant always runs first (or last) on a warming machine.
      const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]);
      for (const variant of order) {
        const cells = await runChild(variant, member.address);
        results.push(...cells);
        progress(
          `round ${round + 1} ${variant}: ` +
            cells.map((c) => `${c.workload} ${Math.round(c.opsPerSecond)}/s`).join(', '),
        );
      }
    }
  } finally {
    stopAll();
  }
  console.log(report(results, rounds));
}

function runChild(variant, server) {
  const script = fileURLToPath(import.meta.url);
  const nodeArgs = variant === 'absent' ? ['--import', BLOCK_API] : [];
  const childArgs = ['--variant', variant, '--server', server, '--seconds', args.seconds];
  childArgs.push('--concurrency', args.concurrency, '--workloads', args.workloads);
  if (args.emulate) childArgs.push('--emulate');
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...nodeArgs, script, ...childArgs], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.on('data', (chunk) => (out += chunk));
    proc.on('error', reject);
    proc.on('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out.trim().split('\n').at(-1)))
        : reject(new Error(`${variant} exited with ${code}`)),
    );
  });
}

function report(results, rounds) {
  const lines = [
    `## Telemetry cost (${rounds} rounds, ${args.seconds} s per cell, ${args.concurrency} callers, ` +
      `1 member${args.emulate ? ', observer called by the bench (--emulate)' : ''})`,
    '',
    '| workload | variant | ops/s median (min–max) | CPU µs/op median (min–max) | p99 µs median | vs absent (ops/s, CPU) | spans/op |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const workload of WORKLOADS) {
    const base = cellStats(
      results.filter((r) => r.workload === workload && r.variant === 'absent'),
    );
    for (const variant of VARIANTS) {
      const s = cellStats(results.filter((r) => r.workload === workload && r.variant === variant));
      const vs =
        variant === 'absent' ? '—' : `${pct(s.ops / base.ops - 1)}, ${pct(s.cpu / base.cpu - 1)}`;
      lines.push(
        `| ${workload} | ${variant} | ${fmt(s.ops)} (${fmt(s.opsMin)}–${fmt(s.opsMax)}) | ` +
          `${s.cpu.toFixed(2)} (${s.cpuMin.toFixed(2)}–${s.cpuMax.toFixed(2)}) | ${fmt(s.p99)} | ${vs} | ${s.spans.toFixed(2)} |`,
      );
    }
  }
  const observer = (variant) =>
    median(results.filter((r) => r.variant === variant).map((r) => r.observerNs));
  const getCpu = cellStats(
    results.filter((r) => r.workload === 'get-hit' && r.variant === 'absent'),
  ).cpu;
  lines.push(
    '',
    `Observer alone (start + end of one command, CPU, median): api ${observer('api').toFixed(0)} ns ` +
      `(${pct(observer('api') / 1000 / getCpu)} of an absent get's ${getCpu.toFixed(2)} µs), ` +
      `sdk ${observer('sdk').toFixed(0)} ns (${pct(observer('sdk') / 1000 / getCpu)}).`,
  );
  return lines.join('\n');
}

function cellStats(cells) {
  const ops = cells.map((c) => c.opsPerSecond);
  const cpu = cells.map((c) => c.cpuPerOp);
  return {
    ops: median(ops),
    opsMin: Math.min(...ops),
    opsMax: Math.max(...ops),
    cpu: median(cpu),
    cpuMin: Math.min(...cpu),
    cpuMax: Math.max(...cpu),
    p99: median(cells.map((c) => c.p99)),
    spans: median(cells.map((c) => c.spansPerOp)),
  };
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');
const pct = (x) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;

/** One variant in this (fresh) process: every workload once, printed as JSON. */
async function child(variant) {
  let countSpans = () => 0;
  if (variant === 'sdk') countSpans = await registerSdk();
  const { MemcachedStore } = await import('../dist/lib/index.js');
  const { createCacheTelemetry } = await import('../dist/lib/telemetry/cache-telemetry.js');
  const quiet = { log() {}, warn() {}, error() {}, debug() {}, verbose() {} };
  const store = new MemcachedStore({
    host: args.server,
    logger: quiet,
    refreshInterval: 0,
    warmupPeriod: 0,
    ...((args.emulate || variant === 'off') && { telemetry: false }),
  });
  await store.ready();
  const keys = Array.from({ length: KEY_COUNT }, (_, i) => `hit:${i}`);
  const batches = Array.from({ length: 10 }, (_, b) =>
    Array.from({ length: MGET_KEYS }, (_, i) => keys[(b * 97 + i * 7) % KEY_COUNT]),
  );
  const value = JSON.stringify({ value: 'v'.repeat(100), expires: null });
  for (const key of keys) await store.set(key, value);

  const [host, port] = args.server.split(':');
  const member = { host, port: Number(port) };
  const observer =
    args.emulate && variant !== 'off' ? createCacheTelemetry(undefined)?.observer : undefined;
  const ops = {
    'get-hit': (i) => store.get(keys[i % KEY_COUNT]),
    'mget-100': (i) => store.getMany(batches[i % batches.length]),
  };
  if (observer !== undefined) {
    ops['get-hit'] = async (i) => {
      const end = observer.start('get', member, 1, 'owner', keys[i % KEY_COUNT]);
      const found = await store.get(keys[i % KEY_COUNT]);
      end({ hits: found === undefined ? 0 : 1 });
    };
    ops['mget-100'] = async (i) => {
      const batch = batches[i % batches.length];
      const end = observer.start('get_multi', member, batch.length, 'owner');
      const found = await store.getMany(batch);
      end({ hits: found.filter((v) => v !== undefined).length });
    };
  }
  const concurrency = Number(args.concurrency);
  const cells = [];
  for (const workload of WORKLOADS) {
    await measure(ops[workload], concurrency, 500); // warm-up: JIT, connections
    const before = countSpans();
    const result = await measure(ops[workload], concurrency, Number(args.seconds) * 1000);
    cells.push({
      variant,
      workload,
      opsPerSecond: result.opsPerSecond,
      cpuPerOp: result.cpuPerOp,
      p99: result.samples.percentile(99),
      spansPerOp: (countSpans() - before) / result.ops,
      errors: result.errors,
    });
  }
  await store.disconnect();
  // The observer alone, start to end, in a tight loop: its cost per command, free of the network
  // and of the other processes' noise in ops/s.
  const alone = createCacheTelemetry(undefined)?.observer;
  const observerNs = alone === undefined ? 0 : observerCost(alone, member);
  console.log(JSON.stringify(cells.map((cell) => ({ ...cell, observerNs }))));
}

/** CPU ns per `start` + end of one get, median of 7 runs of 100,000. */
function observerCost(observer, member) {
  const runs = [];
  for (let run = 0; run < 8; run++) {
    const started = process.cpuUsage();
    for (let i = 0; i < 100_000; i++) observer.start('get', member, 1, 'owner', 'k')({ hits: 1 });
    const used = process.cpuUsage(started);
    if (run > 0) runs.push(((used.user + used.system) * 1000) / 100_000); // run 0: JIT warm-up
  }
  return median(runs);
}

/** The SDK as an app registers it; returns a function counting the spans exported so far. */
async function registerSdk() {
  const { context, metrics, trace } = await import('@opentelemetry/api');
  const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
  const { BasicTracerProvider, BatchSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
  const {
    MeterProvider,
    PeriodicExportingMetricReader,
    InMemoryMetricExporter,
    AggregationTemporality,
  } = await import('@opentelemetry/sdk-metrics');
  let exported = 0;
  // Batched as in production; the exporter drops what it gets (no collector to send to here).
  const exporter = {
    export(spans, done) {
      exported += spans.length;
      done({ code: 0 });
    },
    shutdown: () => Promise.resolve(),
  };
  const processor = new BatchSpanProcessor(exporter, {
    maxQueueSize: 65_536,
    maxExportBatchSize: 4096,
    scheduledDelayMillis: 200,
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [processor] }));
  metrics.setGlobalMeterProvider(
    new MeterProvider({
      readers: [
        new PeriodicExportingMetricReader({
          exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
          exportIntervalMillis: 60_000,
        }),
      ],
    }),
  );
  return () => exported;
}

// Last: the helpers above must be initialized before either runs.
if (args.variant) await child(args.variant);
else await parent();
