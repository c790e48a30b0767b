// Pool size figures: 3, 30 and 100 members (a pool size per fresh process, bench/members-child.js).
// One memcached process listens on every address (127.0.32.1–100, one port): to the pool each
// address is a member of its own, and 101 memcached processes would only add their own memory
// and scheduling to the 2 cores.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { commonFreePort, progress, startMemcached } from './support.js';

const CHILD = fileURLToPath(new URL('./members-child.js', import.meta.url));
export const MEMBER_COUNTS = [3, 30, 100];
const HOSTS = Array.from({ length: 100 }, (_, i) => `127.0.32.${i + 1}`);

function runChild(job) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, JSON.stringify(job)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`${job.n} members: process ended with ${signal ?? code}`));
      else resolve(JSON.parse(stdout.trim().split('\n').pop()));
    });
  });
}

export async function memberFigures({ quick }) {
  const port = await commonFreePort(HOSTS);
  progress(`pool sizes ${MEMBER_COUNTS.join(', ')}: one memcached on ${HOSTS.length} addresses`);
  const server = await startMemcached(HOSTS[0], port, { alsoListen: HOSTS.slice(1) });
  try {
    const rows = [];
    for (const n of MEMBER_COUNTS) {
      progress(`pool of ${n} members`);
      rows.push(
        await runChild({
          n,
          port,
          hosts: HOSTS,
          ...(quick ? { durationMs: 100, warmupMs: 50 } : { durationMs: 1000, warmupMs: 500 }),
        }),
      );
    }
    return { rows };
  } finally {
    server.kill();
  }
}
