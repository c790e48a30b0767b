// Profiling helper (not part of `npm run bench`): one contender, one workload, for a few
// seconds, on 3 fresh members, with only that contender loaded in this process; run under
// `node --cpu-prof --cpu-prof-dir=DIR bench/profile.js <contender> <workload> <concurrency>
// [seconds]` and read the profile with `node bench/profile-summary.js FILE 25 <ops printed>`.
import { buildContender } from './contenders.js';
import { commonFreePort, measure, progress, startMemcached, stopAll } from './support.js';

const [id = 'store', workload = 'get-hit', concurrency = '64', seconds = '4'] =
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
  const cpu = process.cpuUsage();
  const run = await measure(op, Number(concurrency), Number(seconds) * 1000);
  const used = process.cpuUsage(cpu);
  progress(
    `${id} ${workload} c${concurrency}: ${run.ops} ops, ${Math.round(run.opsPerSecond)} ops/s, ` +
      `${((used.user + used.system) / run.ops).toFixed(1)} µs CPU/op, p50 ${run.samples.percentile(50).toFixed(0)} µs`,
  );
  await contender.close();
} finally {
  stopAll();
}
process.exit(0);
