// Fixed work for counting instructions (valgrind's callgrind counts them repeatably, unlike
// seconds): N get hits at concurrency 64 through a MemcachedStore built from `<dist index>`.
// Members must be running; run it twice with different N and subtract to drop start-up:
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//     node bench/get-instructions.js dist/lib/index.js 127.0.40.1:11311,127.0.40.2:11311 60000 off
// `off`: warmupPeriod 0; anything else: the defaults.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [index, servers, count, variant] = process.argv.slice(2);
if (!index || !servers || !count) {
  throw new Error(
    'usage: node bench/get-instructions.js <dist index.js> <host:port,…> <gets> [off]',
  );
}
const { MemcachedStore } = await import(pathToFileURL(resolve(index)).href);
const quiet = { log() {}, warn() {}, error() {} };
const store = new MemcachedStore({
  host: servers,
  logger: quiet,
  refreshInterval: 0,
  ...(variant === 'off' && { warmupPeriod: 0 }),
});
await store.ready();
const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`);
for (const key of keys) await store.set(key, 'x'.repeat(100));
const total = Number(count);
let next = 0;
const worker = async () => {
  while (next < total) {
    if ((await store.get(keys[next++ % keys.length])) === undefined) throw new Error('a miss');
  }
};
await Promise.all(Array.from({ length: 64 }, worker));
await store.disconnect();
