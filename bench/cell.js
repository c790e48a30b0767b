// One contender on one workload in this fresh process (started by bench/isolated.js): build it
// on the given members, fill its keys, warm up, measure, and print the run as one JSON line on
// stdout. Nothing of the other contenders is loaded here.
//   node bench/cell.js '{"id":"store","workload":"get-hit","concurrency":64,
//     "durationMs":1000,"warmupMs":500,"servers":["127.0.30.1:PORT",…],"before":null}'
import { buildContender } from './contenders.js';
import { measureRun } from './throughput.js';

const job = JSON.parse(process.argv[2] ?? 'null');
if (!job?.id || !job.workload || !job.servers) {
  throw new Error('usage: node bench/cell.js <job JSON> (see bench/isolated.js)');
}
const contender = await buildContender(job.id, job.servers, { before: job.before ?? undefined });
const op = contender.ops[job.workload];
if (!op) throw new Error(`${job.id} has no ${job.workload}`);
const run = await measureRun(op, job.concurrency, job);
await contender.close();
process.stdout.write(`${JSON.stringify(run)}\n`);
// Client libraries may keep timers alive; everything this process opened is closed.
process.exit(0);
