// Processes and measuring tools shared by the bench files: memcached members on loopback, a
// small DNS server, timed loops with latency samples, and cleanup of everything started.
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import dns2 from 'dns2';
import { MemcacheClient } from 'memcache-client';

const { Packet, UDPServer } = dns2;

/** Every memcached this process started, by pid: stopped at exit, on errors and on signals. */
const children = new Map();

export function stopAll() {
  for (const child of children.values()) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
}

process.once('exit', stopAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    stopAll();
    process.exit(130);
  });
}

/**
 * Runs a bench entry's `main`, then exits: 0 when it resolves (client libraries may keep timers
 * alive; everything we own is closed), 1 with the error printed after stopping every member.
 */
export async function runMain(main) {
  try {
    await main();
    process.exit(0);
  } catch (error) {
    stopAll();
    console.error(error);
    process.exit(1);
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A port free on every one of `hosts` (members behind one DNS name share their port). */
export async function commonFreePort(hosts) {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await freePort(hosts[0]);
    const free = await Promise.all(hosts.map((host) => isFree(host, port)));
    if (free.every(Boolean)) return port;
  }
  throw new Error(`no common free port on ${hosts.join(', ')}`);
}

function freePort(host) {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function isFree(host, port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

export function memcachedVersion() {
  try {
    return execFileSync('memcached', ['-V'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('memcached is not on PATH (apt-get install memcached)');
  }
}

/**
 * Start one memcached on `host:port` (1 worker thread, 256 MB, no UDP) and wait until it answers.
 * `alsoListen`: more addresses the same process listens on (same port), each a member of its own
 * to a client. Returns `{ host, port, address, pid, kill() }`.
 */
export async function startMemcached(host, port, { alsoListen = [] } = {}) {
  const listen = [host, ...alsoListen].join(',');
  const child = spawn(
    'memcached',
    ['-u', 'root', '-l', listen, '-p', String(port), '-U', '0', '-t', '1', '-m', '256'],
    { stdio: 'ignore' },
  );
  children.set(child.pid, child);
  const member = {
    host,
    port,
    address: `${host}:${port}`,
    pid: child.pid,
    /** SIGKILL, as a node dying would. */
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      children.delete(child.pid);
    },
  };
  const client = new MemcacheClient({ server: member.address, connectTimeout: 200 });
  try {
    for (let i = 0; i < 50; i++) {
      if (child.exitCode !== null) break;
      try {
        await client.version();
        return member;
      } catch {
        await sleep(100);
      }
    }
  } finally {
    client.shutdown();
  }
  member.kill();
  throw new Error(`memcached did not start on ${member.address}`);
}

/**
 * A DNS server on 127.0.0.1 (UDP, free port) answering A records the caller sets; other names
 * and types answer NXDOMAIN / no records. Counts A queries per name with their arrival times.
 */
export async function startDns() {
  const records = new Map();
  const times = new Map();
  const server = new UDPServer({ type: 'udp4' });
  server.on('request', (request, send) => {
    const [question] = request.questions;
    if (!question) return;
    const name = question.name.toLowerCase().replace(/\.$/, '');
    const response = Packet.createResponseFromRequest(request);
    const addresses = records.get(name);
    if (question.type === Packet.TYPE.A) {
      let arrivals = times.get(name);
      if (!arrivals) times.set(name, (arrivals = []));
      arrivals.push(performance.now());
      for (const address of addresses ?? []) {
        response.answers.push(
          Packet.createResourceFromQuestion(question, {
            class: Packet.CLASS.IN,
            ttl: 0,
            address,
          }),
        );
      }
    }
    if (addresses === undefined) response.header.rcode = 3; // NXDOMAIN
    send(response).catch(() => undefined);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.bind(0, '127.0.0.1', resolve);
  });
  const address = `127.0.0.1:${server.address().port}`;
  return {
    address,
    setA: (name, list) => records.set(name, [...list]),
    /** `performance.now()` of each A query for `name`, oldest first. */
    queryTimes: (name) => [...(times.get(name) ?? [])],
    reset: () => times.clear(),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Latency samples: the first `size` kept, then reservoir sampling (uniform over the run). */
export class Samples {
  constructor(size = 20_000) {
    this.values = new Float64Array(size);
    this.count = 0;
  }

  add(value) {
    const n = this.count++;
    if (n < this.values.length) this.values[n] = value;
    else {
      const slot = Math.floor(Math.random() * this.count);
      if (slot < this.values.length) this.values[slot] = value;
    }
  }

  merge(other) {
    for (let i = 0; i < Math.min(other.count, other.values.length); i++) this.add(other.values[i]);
  }

  /** Percentile `p` (0–100) in the unit added. */
  percentile(p) {
    const n = Math.min(this.count, this.values.length);
    if (n === 0) return NaN;
    const sorted = this.values.slice(0, n).sort();
    return sorted[Math.min(n - 1, Math.floor((p / 100) * n))];
  }
}

/**
 * Runs `op(i)` from `concurrency` callers for `durationMs`; every op timed with
 * `performance.now()`. Returns { ops, seconds, opsPerSecond, cpuPerOp (µs), samples (µs), errors }.
 */
export async function measure(op, concurrency, durationMs, samples = new Samples()) {
  let next = 0;
  let errors = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const deadline = started + durationMs;
  const worker = async () => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= deadline) return;
      try {
        await op(next++);
      } catch {
        errors++;
      }
      samples.add((performance.now() - t0) * 1000);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  // CPU of this process only (not memcached's): what the JS path costs, steadier than ops/s
  // when other processes share the cores.
  const cpuPerOp = (used.user + used.system) / next;
  return { ops: next, seconds, opsPerSecond: next / seconds, cpuPerOp, samples, errors };
}

export const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

let gcFunction;
/** A full GC (the flag is set at run time, so `npm run bench` needs no node options). */
export function collectGarbage() {
  if (!gcFunction) {
    setFlagsFromString('--expose-gc');
    gcFunction = runInNewContext('gc');
  }
  gcFunction();
  gcFunction();
}

/** Open sockets of this process (Linux /proc), by kind: tcp/udp/unix are not told apart. */
export function openSockets() {
  let count = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) count++;
    } catch {
      // Closed between readdir and readlink.
    }
  }
  return count;
}

/** Logs progress to stderr so stdout stays the report. */
export function progress(message) {
  process.stderr.write(`[bench] ${message}\n`);
}
