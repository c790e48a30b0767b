// `npm run demo` (builds first): discovery at work in under a minute, on one machine with
// nothing but Node. It starts memcached members on loopback addresses, a DNS server that
// answers for them as a headless Service would (SRV + A records), and the sample app pointed at
// that name. Then it sends traffic through the app's cached endpoint (GET /square/:n) and
// walks through scale-up, a pod kill, the pod's restart and scale-down, printing after each
// step where the cache lookups went. It stops every process it started, by pid, also on error
// and on Ctrl-C.
//
//   node scripts/demo.js [--quick] [--embedded] [--subnet 127.0.20]
//     --quick      fewer requests per step (CI runs this)
//     --embedded   use the embedded memcached-protocol server even if memcached is installed
//     --subnet     the first three octets of the members' loopback addresses (default 127.0.20,
//                  or DEMO_SUBNET); members get .1, .2, .3, .4
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDnsServer } from './demo/dns-server.js';
import { memberStats, memcachedImplementation, startMember } from './demo/members.js';
import { freePort, isRunning, Processes, runToEnd, signal, sleep } from './demo/processes.js';
import { LEGEND, printStep } from './demo/report.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SAMPLE = join(ROOT, 'dist', 'sample', 'main.js');
/** The names a Kubernetes cluster would give: StatefulSet `memcached`, namespace `demo`. */
const SERVICE = 'memcached.demo.svc.cluster.local';
const SRV_NAME = `_memcache._tcp.${SERVICE}`;
/** The whole run stops (and cleans up) after this long whatever happens. */
const WATCHDOG_MS = 120_000;
/** How long the app may take to see a DNS change (it looks again every second). */
const CONVERGE_MS = 10_000;
const CONCURRENCY = 8;

const USAGE = 'Usage: node scripts/demo.js [--quick] [--embedded] [--subnet 127.0.20]';

function parseArgs(argv) {
  const options = { quick: false, embedded: false, subnet: process.env.DEMO_SUBNET || '127.0.20' };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--quick') options.quick = true;
    else if (argv[i] === '--embedded') options.embedded = true;
    else if (argv[i] === '--subnet') options.subnet = argv[++i];
    else if (argv[i] === '--help') {
      console.log(USAGE);
      process.exit(0);
    } else {
      console.error(`demo: unknown argument "${argv[i]}". ${USAGE}`);
      process.exit(2);
    }
  }
  const octets = /^127\.(\d{1,3})\.(\d{1,3})$/.exec(options.subnet ?? '');
  if (!octets || octets.slice(1).some((octet) => Number(octet) > 255)) {
    console.error(`demo: --subnet takes three octets of 127.0.0.0/8, like 127.0.20. ${USAGE}`);
    process.exit(2);
  }
  return options;
}

const options = parseArgs(process.argv.slice(2));
const load = options.quick ? { keys: 150, requests: 300 } : { keys: 500, requests: 1500 };
const processes = new Processes();
let dns;
let tmp;
let cleaning;
/** Set on Ctrl-C/SIGTERM: the signal handler cleans up and exits; the main path stays quiet. */
let interrupted = false;

/** Stop everything this run started (idempotent): processes by pid, the DNS server, the temp dir. */
function cleanup() {
  return (cleaning ??= (async () => {
    await processes.stopAll();
    await dns?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    const pids = processes.pids();
    console.log(`\nStopped every process the demo started (pids: ${pids.join(' ') || 'none'}).`);
  })());
}

for (const [name, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
]) {
  process.once(name, () => {
    interrupted = true;
    console.log(`\n${name} received: stopping what the demo started.`);
    void cleanup().finally(() => process.exit(code));
  });
}
setTimeout(() => {
  console.error(`\ndemo: still running after ${WATCHDOG_MS / 1000} s; giving up.`);
  void cleanup().finally(() => process.exit(1));
}, WATCHDOG_MS).unref();

try {
  await main();
  await cleanup();
} catch (error) {
  // After Ctrl-C the app's requests fail as it stops: that is no failure of the demo.
  if (!interrupted) {
    console.error(`\ndemo failed: ${error instanceof Error ? error.message : String(error)}`);
    await cleanup();
    process.exitCode = 1;
  }
}
// fetch keeps idle keep-alive sockets to the (now stopped) app for a few seconds: don't wait.
// After a signal, its handler exits once everything is stopped.
if (!interrupted) process.exit(process.exitCode ?? 0);

async function main() {
  if (!existsSync(SAMPLE)) {
    throw new Error(`${SAMPLE} is missing: build first (npm run build; npm run demo does both).`);
  }
  const implementation = memcachedImplementation({ embedded: options.embedded });
  console.log('nestjs-k8s demo: a memcached pool discovered from DNS, changing under load.\n');
  console.log(`memcached: ${implementation.describe}`);

  dns = await startDnsServer('127.0.0.1');
  console.log(`DNS server: ${dns.address} (answers for ${SRV_NAME}, as CoreDNS would)`);

  const pods = [];
  const publish = () => {
    const listed = pods.filter((pod) => pod.listed);
    for (const pod of pods) dns.setA(pod.target, [pod.host]);
    dns.setSrv(
      SRV_NAME,
      listed.map((pod) => ({ target: pod.target, port: pod.port })),
    );
  };
  const startPod = async (pod) => {
    pod.child = await startMember(processes, implementation, pod.name, pod.host, pod.port);
    console.log(`  started ${pod.name}: pid ${pod.child.pid} on ${pod.id}`);
  };
  const addPod = async (ordinal) => {
    const host = `${options.subnet}.${ordinal + 1}`;
    const port = await freePort(host);
    const name = `memcached-${ordinal}`;
    const pod = { name, host, port, id: `${host}:${port}`, target: `${name}.${SERVICE}` };
    pods.push(pod);
    await startPod(pod);
    return pod;
  };
  tmp = mkdtempSync(join(tmpdir(), 'nestjs-k8s-demo-'));
  const env = { ...process.env, DATABASE_URL: join(tmp, 'demo.sqlite'), NO_COLOR: '1' };
  // The migration Job and the memcached pods start together, as in a cluster.
  const migration = runToEnd(processes, process.execPath, [SAMPLE, 'migrate'], {
    cwd: ROOT,
    env,
  });
  for (let i = 0; i < 3; i++) await addPod(i);
  const migrated = await migration;
  if (migrated.code !== 0) {
    throw new Error(`migrate failed (exit ${migrated.code}):\n${migrated.output}`);
  }
  console.log(`  migrate Job: ${migrated.output.trim().split('\n').at(-1)}`);

  // The records are there before the app's first lookup, as a running StatefulSet's would be.
  for (const pod of pods) pod.listed = true;
  publish();
  const appPort = await freePort('127.0.0.1');
  const app = processes.start(process.execPath, [SAMPLE], {
    cwd: ROOT,
    env: {
      ...env,
      PORT: String(appPort),
      CACHE_HOST: SRV_NAME,
      CACHE_PORT: '',
      CACHE_DNS_SERVERS: dns.address,
      CACHE_REFRESH_INTERVAL: '1000',
      // No pod to take out of endpoints here: stop at once when the demo ends (inside a CI pod
      // the sample would otherwise wait 5 s).
      SHUTDOWN_DELAY_MS: '0',
    },
  });
  const appLog = watchLog(app.child);
  await appLog.waitFor('Listening on port', 20_000, () => app.output());
  const base = `http://127.0.0.1:${appPort}`;
  console.log(`sample app: pid ${app.child.pid} on ${base}, CACHE_HOST=${SRV_NAME}`);
  console.log(
    `traffic: ${load.requests} requests per step to GET /square/:n, n random in 0..${load.keys - 1}, ` +
      `${CONCURRENCY} at a time`,
  );
  console.log(LEGEND);

  const cacheStats = async () => {
    try {
      const response = await fetch(`${base}/cache/stats`, { signal: AbortSignal.timeout(5_000) });
      return await response.json();
    } catch (error) {
      // A refused connection often arrives before the app's exit is reaped: wait (bounded).
      if (isRunning(app.child)) await Promise.race([once(app.child, 'exit'), sleep(2_000)]);
      if (isRunning(app.child)) throw new Error(`GET /cache/stats failed: ${error.message}`);
      const { exitCode, signalCode } = app.child;
      throw new Error(
        `the sample app (pid ${app.child.pid}) exited (${signalCode ?? `code ${exitCode}`}):\n${app.output()}`,
      );
    }
  };
  const until = async (check, what) => {
    const started = Date.now();
    for (;;) {
      const stats = await cacheStats();
      if (check(stats)) return (Date.now() - started) / 1000;
      if (Date.now() - started > CONVERGE_MS) {
        throw new Error(`the app did not see ${what} within ${CONVERGE_MS / 1000} s`);
      }
      await sleep(100);
    }
  };
  const random = mulberry32(20_261_125);
  const traffic = (requests) => drive(base, requests, load.keys, random);

  const steps = [
    {
      title: `3 members: ${pods.map((pod) => pod.name).join(', ')} in DNS`,
      run: async () => {
        await until((s) => pods.every((pod) => s.pool?.ring.includes(pod.id)), 'the 3 members');
        return 'the app found the 3 members through DNS at start-up (SRV, then A for each target)';
      },
    },
    {
      title: 'scale up to 4: memcached-3 starts and its pod joins DNS',
      run: async () => {
        const pod = await addPod(3);
        pod.listed = true;
        publish();
        const seconds = await until((s) => s.pool?.ring.includes(pod.id), `${pod.name}`);
        return `the app put ${pod.name} on its ring ${seconds.toFixed(1)} s after DNS listed it`;
      },
    },
    {
      title:
        'pod kill: memcached-1 gets SIGKILL; DNS still lists it (Kubernetes has not noticed yet)',
      run: async () => {
        const pod = pods[1];
        const exited = once(pod.child, 'exit');
        signal(pod.child, 'SIGKILL');
        await exited;
        console.log(`  killed ${pod.name} (pid ${pod.child.pid})`);
        // Requests keep coming; the app ejects the member after a few failed cache operations.
        let requests = 0;
        const started = Date.now();
        while (!(await cacheStats()).pool?.ring.every((id) => id !== pod.id)) {
          if (Date.now() - started > CONVERGE_MS) {
            throw new Error(`the app did not eject ${pod.name} within ${CONVERGE_MS / 1000} s`);
          }
          const { failed } = await traffic(20);
          if (failed > 0) throw new Error(`${failed} requests failed while ${pod.name} was down`);
          requests += 20;
        }
        return `the app ejected ${pod.name} from its ring within ${requests} requests; none of them failed`;
      },
    },
    {
      title: 'restart: memcached-1 comes back empty; it leaves DNS while not ready, then returns',
      run: async () => {
        const pod = pods[1];
        pod.listed = false;
        publish();
        await until((s) => !s.servers.includes(pod.id), `${pod.name} leave DNS`);
        await startPod(pod);
        pod.listed = true;
        publish();
        const seconds = await until((s) => s.pool?.ring.includes(pod.id), `${pod.name} return`);
        return `the app probed ${pod.name} and put it back on its ring ${seconds.toFixed(1)} s after DNS listed it`;
      },
    },
    {
      title: 'scale down to 3: memcached-3 leaves DNS, then its process stops',
      run: async () => {
        const pod = pods[3];
        pod.listed = false;
        publish();
        const seconds = await until((s) => !s.servers.includes(pod.id), `${pod.name} leave DNS`);
        const exited = once(pod.child, 'exit');
        signal(pod.child, 'SIGTERM');
        await exited;
        return `the app dropped ${pod.name} ${seconds.toFixed(1)} s after DNS did; its keys went back to their old owners`;
      },
    },
  ];

  let failedRequests = 0;
  for (const [index, step] of steps.entries()) {
    console.log(`\nStep ${index + 1}/${steps.length} · ${step.title}`);
    const atStart = await cacheStats();
    const note = await step.run();
    const beforeTraffic = await cacheStats();
    const result = await traffic(load.requests);
    failedRequests += result.failed;
    const atEnd = await cacheStats();
    const items = new Map();
    for (const pod of pods) {
      items.set(pod.id, isRunning(pod.child) ? await memberStats(pod.host, pod.port) : undefined);
    }
    printStep({
      note,
      pods: pods.map((pod) => ({ ...pod, running: isRunning(pod.child) })),
      atStart,
      beforeTraffic,
      atEnd,
      items,
      result,
      log: appLog.take(),
    });
  }
  console.log(
    '\nWhat happened: members came and went through DNS alone and the app never restarted; ' +
      (failedRequests === 0
        ? 'no request failed. '
        : `${failedRequests} requests failed (see above). `) +
      'Keys moved only to or from the member that changed (ketama).',
  );
}

/** Send `count` requests for random keys, CONCURRENCY at a time; counts requests that failed. */
async function drive(base, count, keys, random) {
  let sent = 0;
  let failed = 0;
  const worker = async () => {
    while (sent < count) {
      sent++;
      const n = Math.floor(random() * keys);
      try {
        const response = await fetch(`${base}/square/${n}`, { signal: AbortSignal.timeout(5_000) });
        const body = await response.json();
        if (!response.ok || body.square !== n * n) failed++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { requests: count, failed };
}

/**
 * The app's log lines as they come, for the few worth showing (membership changes, ejections),
 * and a bounded wait for a line.
 */
function watchLog(child) {
  let pending = '';
  let fresh = [];
  let all = '';
  const interesting = /Cache members of|ejected|re-admitted|answers again|DNS lookup/;
  child.stdout.on('data', (chunk) => {
    all = (all + chunk.toString()).slice(-65_536);
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop();
    for (const line of lines) {
      if (!interesting.test(line)) continue;
      // "[Nest] 123  - 11/25/2026, 6:00:00 PM   WARN [K8sCache] message" → "WARN message".
      const match = /\b(LOG|WARN|ERROR)\s+\[[^\]]+\]\s+(.*)$/.exec(line);
      fresh.push(match ? `${match[1]} ${match[2]}` : line.trim());
    }
  });
  return {
    take: () => {
      const lines = fresh;
      fresh = [];
      return lines;
    },
    async waitFor(text, timeoutMs, output) {
      const deadline = Date.now() + timeoutMs;
      while (!all.includes(text)) {
        if (!isRunning(child)) throw new Error(`the sample app exited:\n${output()}`);
        if (Date.now() > deadline) {
          throw new Error(
            `the sample app did not print "${text}" in ${timeoutMs / 1000} s:\n${output()}`,
          );
        }
        await sleep(50);
      }
    },
  };
}

/** A small seeded random number generator: the same keys every run. */
function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
