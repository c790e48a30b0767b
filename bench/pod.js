// One application process ("pod") of bench/pods.js: the `CacheService` stack that K8sModule
// builds, on the members it is given, driven by messages from the parent over IPC.
//   write: set this pod's keys; read: read every pod's keys and check each value;
//   warm: a warm-up on the read load; go: the measured read load from `startAt` (epoch ms).
import { NestFactory } from '@nestjs/core';
import { CacheService, K8sModule } from '../dist/lib/index.js';
import { measure } from './support.js';

const { index, servers, keysPerPod } = JSON.parse(process.argv[2] ?? 'null') ?? {};
if (index === undefined || !servers || !keysPerPod) {
  throw new Error('usage: forked by bench/pods.js');
}
const app = await NestFactory.createApplicationContext(
  K8sModule.forRoot({ cache: { host: servers.join(','), namespace: 'pods' } }),
  { logger: false },
);
const service = app.get(CacheService);
const keyOf = (pod, j) => `pod${pod}:item${j}`;

async function inBatches(count, fn) {
  for (let j = 0; j < count; j += 50) {
    await Promise.all(Array.from({ length: Math.min(50, count - j) }, (_, k) => fn(j + k)));
  }
}

const handlers = {
  async write() {
    await inBatches(keysPerPod, (j) => service.set(keyOf(index, j), { pod: index, j }));
    return {};
  },
  async read({ pods }) {
    let missing = 0;
    let wrong = 0;
    for (let pod = 0; pod < pods; pod++) {
      await inBatches(keysPerPod, async (j) => {
        const value = await service.get(keyOf(pod, j));
        if (value === undefined) missing++;
        else if (value.pod !== pod || value.j !== j) wrong++;
      });
    }
    return { checked: pods * keysPerPod, missing, wrong };
  },
  async warm({ pods, warmupMs }) {
    await measure((i) => service.get(keyOf(i % pods, i % keysPerPod)), 64, warmupMs);
    return {};
  },
  async go({ pods, startAt, durationMs }) {
    const wait = startAt - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const run = await measure((i) => service.get(keyOf(i % pods, i % keysPerPod)), 64, durationMs);
    return {
      ops: run.ops,
      seconds: run.seconds,
      cpuUs: run.cpuPerOp * run.ops,
      errors: run.errors,
    };
  },
};

process.on('message', async (message) => {
  if (message.type === 'close') {
    await app.close();
    process.exit(0);
  }
  try {
    process.send({ type: message.type, ...(await handlers[message.type](message)) });
  } catch (error) {
    process.send({ type: 'error', message: String(error?.stack ?? error) });
  }
});
process.send({ type: 'ready' });
