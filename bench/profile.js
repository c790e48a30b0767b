// Profiling helper (not part of `npm run bench`): one contender, one workload, for a few
// seconds, on 3 fresh members, with only that contender loaded in this process:
//   node bench/profile.js <contender> <workload> <concurrency> [seconds] [FILE.cpuprofile]
// With FILE, a CPU profile of the measured seconds only (no start-up, no filling) is written
// there; read it with `node bench/profile-summary.js FILE 25 <ops printed>`.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { buildContender } from './contenders.js';
import { commonFreePort, measure, progress, startMemcached, stopAll } from './support.js';

const [id = 'store', workload = 'get-hit', concurrency = '64', seconds = '4', file] =
  process.argv.slice(2);
const hosts = ['127.0.30.1', '127.0.30.2', '127.0.30.3'];
const port = await commonFreePort(hosts);
const members = await Promise.all(hosts.map((host) => startMemcached(host, port)));
try {
  const contender = await buildContender(
    id,
    members.map((m) => m.address),
  );
  const op = contender.ops[workload];
  if (!op) throw new Error(`${id} has no ${workload}: ${Object.keys(contender.ops).join(', ')}`);
  // A warm-up first, as in the bench's cells: the profile shows the JIT-compiled steady state.
  await measure(op, Number(concurrency), 500);
  const session = new Session();
  if (file) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  const cpu = process.cpuUsage();
  const run = await measure(op, Number(concurrency), Number(seconds) * 1000);
  const used = process.cpuUsage(cpu);
  if (file) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  }
  progress(
    `${id} ${workload} c${concurrency}: ${run.ops} ops, ${Math.round(run.opsPerSecond)} ops/s, ` +
      `${((used.user + used.system) / run.ops).toFixed(1)} µs CPU/op, p50 ${run.samples.percentile(50).toFixed(0)} µs`,
  );
  await contender.close();
} finally {
  stopAll();
}
process.exit(0);
