// The stampede: P app processes ("pods") × C callers loop on `wrap` of one hot key whose loader
// (a database query) takes 100 ms, with a 1 s TTL, for 12 s, on the bench's members. Per
// contender: loader calls fleet-wide and per expiry window, calls that waited for a loader (on
// the first fill, and after it: a stampede), p99, errors and wrong values. Each contender's pods
// are fresh processes (bench/stampede-pod.js), started together, in a namespace of their own.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Samples, progress } from './support.js';

const POD = fileURLToPath(new URL('./stampede-pod.js', import.meta.url));

export const STAMPEDE_CONTENDERS = [
  {
    id: 'ours-off',
    label: 'ours: `CacheService.wrap`, `leaseTtl: 0` (in-process coalescing only)',
  },
  { id: 'ours-lease', label: 'ours: `CacheService.wrap`, leases (default)' },
  {
    id: 'ours-swr',
    label: 'ours: `CacheService.wrap`, leases + `staleWhileRevalidate: 1000`',
  },
  { id: 'peer-stack', label: 'peer: cache-manager `wrap` + Keyv + `@keyv/memcache`' },
  { id: 'memcache', label: 'peer: `memcache` 1.10, get / load / set, in-process coalescing' },
];

/** A forked pod: resolves `ready`, then `run(startAt, durationMs)` resolves with its figures. */
function startPod(job) {
  const child = fork(POD, [JSON.stringify(job)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [],
  });
  let settle;
  const answer = () =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`stampede pod: no answer in 120 s`)),
        120_000,
      );
      settle = {
        resolve: (m) => (clearTimeout(timer), resolve(m)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
    });
  child.on('message', (message) => settle?.resolve(message));
  child.once('exit', (code) => {
    if (code !== 0) settle?.reject(new Error(`stampede pod exited with ${code}`));
  });
  const ready = answer();
  return {
    ready,
    run(startAt, durationMs) {
      const done = answer();
      child.send({ startAt, durationMs });
      return done;
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

async function runContender(contender, servers, settings, index) {
  const namespace = `stampede-${contender.id}-${process.pid}-${index}`;
  const start = (pod) =>
    startPod({
      contender: contender.id,
      servers,
      namespace,
      key: 'hot',
      ttl: settings.ttl,
      loaderMs: settings.loaderMs,
      callers: settings.callers,
      thinkMs: settings.thinkMs,
      pod,
    });
  // The first pod makes the namespace's generation, as an app's earlier pods would have; the
  // others then start together.
  const pods = [start(0)];
  try {
    await pods[0].ready;
    for (let pod = 1; pod < settings.pods; pod++) pods.push(start(pod));
    await Promise.all(pods.map((p) => p.ready));
    const startAt = Date.now() + 200;
    const results = await Promise.all(pods.map((p) => p.run(startAt, settings.durationMs)));
    const samples = new Samples(200_000);
    for (const r of results) for (const value of r.samples) samples.add(value);
    const sum = (field) => results.reduce((n, r) => n + r[field], 0);
    const windows = settings.durationMs / settings.ttl;
    return {
      contender,
      loaderCalls: sum('loaderCalls'),
      perWindow: sum('loaderCalls') / windows,
      calls: sum('calls'),
      waitedFirst: sum('waitedFirst'),
      waitedAfter: sum('waitedAfter'),
      p50: samples.percentile(50) / 1000,
      p99: samples.percentile(99) / 1000,
      errors: sum('errors'),
      wrong: sum('wrong'),
    };
  } finally {
    for (const p of pods) p.kill();
  }
}

/** The stampede table's rows, one per contender of `ids` (all by default). */
export async function stampedeFigures({ servers, quick, ids }) {
  const settings = quick
    ? { pods: 2, callers: 4, ttl: 1_000, loaderMs: 100, durationMs: 1_500, thinkMs: 10 }
    : { pods: 4, callers: 16, ttl: 1_000, loaderMs: 100, durationMs: 12_000, thinkMs: 10 };
  const contenders = STAMPEDE_CONTENDERS.filter((c) => !ids || ids.includes(c.id));
  const rows = [];
  for (const [index, contender] of contenders.entries()) {
    progress(`stampede: ${contender.id} (${settings.pods} pods × ${settings.callers} callers)`);
    rows.push(await runContender(contender, servers, settings, index));
  }
  return { settings, rows };
}

const fixed = (n, digits) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

/** The stampede table, for the report (`out` writes one line). */
export function renderStampede(out, { settings, rows }) {
  const s = settings;
  out('### Stampede: one hot key across pods');
  out();
  out(
    `${s.pods} app processes × ${s.callers} callers loop on \`wrap('hot', loader, ${s.ttl})\` ` +
      `(each pausing ${s.thinkMs} ms between calls) for ${s.durationMs / 1000} s; the loader takes ` +
      `${s.loaderMs} ms. Expiry windows: ${fixed(s.durationMs / s.ttl, 0)}. A call that took ≥ ` +
      `${s.loaderMs / 2} ms waited for a loader; "first fill": such calls before the pod had its ` +
      'first value (unavoidable), "after": every later one (a stampede).',
  );
  out();
  out(
    '| contender | loader calls | per expiry window | waited: first fill | waited: after | p50 ms | p99 ms | calls | errors | wrong values |',
  );
  out('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const r of rows) {
    out(
      `| ${r.contender.label} | ${r.loaderCalls} | ${fixed(r.perWindow, 2)} | ${r.waitedFirst} | ` +
        `${r.waitedAfter} | ${fixed(r.p50, 1)} | ${fixed(r.p99, 1)} | ${r.calls} | ${r.errors} | ${r.wrong} |`,
    );
  }
  out();
}
