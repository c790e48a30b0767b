// Several application processes ("pods") against the same members: each sets its own keys,
// every process then reads every key of every other and checks the value (their rings and
// namespace generations agree, or reads miss), then all run the same read load at the same time
// for the aggregate throughput of 1, 2 and 4 processes. The CPU of the app processes and of
// memcached is counted against what the machine's cores could give in that time.
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { progress } from './support.js';

const POD = fileURLToPath(new URL('./pod.js', import.meta.url));
export const POD_COUNTS = [1, 2, 4];
const TICKS_PER_SECOND = 100;

/** User + system CPU seconds of process `pid` so far (Linux /proc). */
function cpuSecondsOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** A forked pod and a way to send it a message and wait for its answer. */
function startPod(index, servers, keysPerPod) {
  const child = fork(POD, [JSON.stringify({ index, servers, keysPerPod })], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // Not this process's flags (a profiler's, say): a pod is a plain app process.
    execArgv: [],
  });
  let waiting;
  child.on('message', (message) => {
    const pending = waiting;
    waiting = undefined;
    if (!pending) return;
    if (message.type === 'error') pending.reject(new Error(`pod ${index}: ${message.message}`));
    else pending.resolve(message);
  });
  child.once('exit', (code) => waiting?.reject(new Error(`pod ${index} exited with ${code}`)));
  const next = () =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`pod ${index}: no answer in 120 s`)),
        120_000,
      );
      waiting = {
        resolve: (m) => (clearTimeout(timer), resolve(m)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
    });
  const ready = next();
  return {
    ready,
    ask(message) {
      const answer = next();
      child.send(message);
      return answer;
    },
    close() {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
      if (child.connected) child.send({ type: 'close' });
      else child.kill('SIGKILL');
      return new Promise((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => (clearTimeout(timer), resolve()));
      });
    },
  };
}

async function runPods(count, live, settings) {
  const servers = live.map((m) => m.address);
  const pods = Array.from({ length: count }, (_, i) => startPod(i, servers, settings.keysPerPod));
  try {
    await Promise.all(pods.map((p) => p.ready));
    const all = (message) => Promise.all(pods.map((p) => p.ask(message)));
    await all({ type: 'write' });
    const reads = await all({ type: 'read', pods: count });
    await all({ type: 'warm', pods: count, warmupMs: settings.warmupMs });
    const memcachedBefore = live.reduce((sum, m) => sum + cpuSecondsOf(m.pid), 0);
    const startAt = Date.now() + 100;
    const runs = await all({ type: 'go', pods: count, startAt, durationMs: settings.durationMs });
    const memcachedCpu = live.reduce((sum, m) => sum + cpuSecondsOf(m.pid), 0) - memcachedBefore;
    const seconds = Math.max(...runs.map((r) => r.seconds));
    return {
      count,
      keys: settings.keysPerPod * count,
      checked: reads.reduce((n, r) => n + r.checked, 0),
      missing: reads.reduce((n, r) => n + r.missing, 0),
      wrong: reads.reduce((n, r) => n + r.wrong, 0),
      opsPerSecond: runs.reduce((sum, r) => sum + r.ops / r.seconds, 0),
      appCpu: runs.reduce((sum, r) => sum + r.cpuUs, 0) / 1e6,
      memcachedCpu,
      seconds,
      errors: runs.reduce((n, r) => n + r.errors, 0),
    };
  } finally {
    await Promise.all(pods.map((p) => p.close()));
  }
}

/**
 * Rows for 1, 2 and 4 pods on the `live` members; throws when one pod's keys read as missing or
 * wrong in another (the pods disagree on placement): the run fails.
 */
export async function podFigures({ live, quick }) {
  const settings = quick
    ? { keysPerPod: 200, durationMs: 200, warmupMs: 100 }
    : { keysPerPod: 1000, durationMs: 2000, warmupMs: 500 };
  const rows = [];
  // --quick: two processes still prove that one reads what the other set.
  for (const count of quick ? POD_COUNTS.slice(0, 2) : POD_COUNTS) {
    progress(`${count} app process(es) on the same members`);
    rows.push(await runPods(count, live, settings));
  }
  const bad = rows.filter((r) => r.missing || r.wrong || r.checked !== r.keys * r.count);
  if (bad.length) {
    throw new Error(
      `pods disagree: ${bad.map((r) => `${r.count} pods: ${r.missing} missing, ${r.wrong} wrong of ${r.checked}`).join('; ')}`,
    );
  }
  return { settings, rows, cores: cpus().length };
}
