// Fixed work for counting instructions: N operations of one workload (get hits by default, or
// `set-100`) at a given concurrency through one contender of the bench (built, filled and
// checked as in bench/cell.js), on members that must be running. bench/instructions.js runs it
// under valgrind's callgrind at two sizes and subtracts; by hand:
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null node --predictable \
//     bench/get-instructions.js store 127.0.40.1:11311,127.0.40.2:11311 6000 1
// Arguments: <contender id> <host:port,…> <operations> [concurrency, default 64] [workload,
// default get-hit] [dist index.js of an earlier build, for store-before].
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildContender } from './contenders.js';

const [id, servers, count, concurrency = '64', workload = 'get-hit', beforeIndex] =
  process.argv.slice(2);
if (!id || !servers || !count) {
  throw new Error(
    'usage: node bench/get-instructions.js <contender> <host:port,…> <operations> [concurrency] [workload] [before index.js]',
  );
}
const before = beforeIndex ? { index: pathToFileURL(resolve(beforeIndex)).href } : undefined;
const contender = await buildContender(id, servers.split(','), { before, slow: true });
const operation = contender.ops[workload];
if (!operation) throw new Error(`${id} has no workload ${workload}`);
const total = Number(count);
let next = 0;
const worker = async () => {
  while (next < total) {
    const result = await operation(next++);
    if (workload === 'get-hit' && result == null) throw new Error('a miss');
    if (workload.startsWith('set') && result === false) throw new Error('a set failed');
  }
};
await Promise.all(Array.from({ length: Number(concurrency) }, worker));
await contender.close();
process.exit(0);
