import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import Keyv from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemcachedStore } from '../../lib/index.js';
import { freePort, memcachedAvailable } from '../support/memcached.js';
import { ROOT } from '../support/run-command.js';
import { sleep, waitFor } from '../support/wait-for.js';

// `npm run demo -- --quick`, as CI runs it, with the real memcached and with the embedded
// memcached-protocol server; then that server on its own, against raw protocol and our store.
// This file's loopback ranges: 127.0.21.x (demo, memcached binary), 127.0.22.x (demo,
// embedded server), 127.0.23.x (embedded server alone). `dist/` is built by the global setup.

interface DemoRun {
  code: number | null;
  output: string;
}

/**
 * Run the demo to its end (bounded: SIGKILL after 120 s, reported as a failure). `onOutput` sees
 * the output so far each time more arrives, to act on the demo mid-run.
 */
async function runDemo(
  args: string[],
  onOutput?: (output: string, child: ChildProcess) => void,
): Promise<DemoRun> {
  const child = spawn(process.execPath, ['scripts/demo.js', '--quick', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const more = (chunk: Buffer): void => {
    output += chunk.toString();
    onOutput?.(output, child);
  };
  child.stdout.on('data', more);
  child.stderr.on('data', more);
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, output };
}

/** The pids the demo says it started, once it says it stopped them all. */
function stoppedPids(output: string): number[] {
  const stopped = /^Stopped every process the demo started \(pids: ([\d ]+)\)\.$/m.exec(output);
  expect(stopped, output).not.toBeNull();
  return stopped![1].split(' ').map(Number);
}

interface Row {
  member: string;
  process: string;
  app: string;
  share: number;
  errors: number;
}

/** The tables of a demo run: step number → rows by member name. */
function tables(output: string): Map<number, Map<string, Row>> {
  const steps = new Map<number, Map<string, Row>>();
  let current: Map<string, Row> | undefined;
  for (const line of output.split('\n')) {
    const step = /^Step (\d+)\/\d+ · /.exec(line);
    if (step) steps.set(Number(step[1]), (current = new Map()));
    const row =
      /^\s+(memcached-\d)\s+\S+\s+(up|down)\s+(on ring|ejected|not in DNS)\s+\S+\s+([\d.]+)%\s+\S+\s+(\d+)$/.exec(
        line,
      );
    if (row && current) {
      current.set(row[1], {
        member: row[1],
        process: row[2],
        app: row[3],
        share: Number(row[4]),
        errors: Number(row[5]),
      });
    }
  }
  return steps;
}

/** True while a process with this pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** What every run must show, whichever memcached it ran. */
function expectDiscoveryWorked(run: DemoRun): void {
  expect(run.code, run.output).toBe(0);
  const steps = tables(run.output);
  expect([...steps.keys()]).toEqual([1, 2, 3, 4, 5]);

  // Start: 3 members, each taking keys.
  expect([...steps.get(1)!.keys()]).toEqual(['memcached-0', 'memcached-1', 'memcached-2']);
  for (const row of steps.get(1)!.values()) expect(row.share).toBeGreaterThan(0);

  // Scale-up: the 4th member takes keys.
  const scaledUp = steps.get(2)!.get('memcached-3')!;
  expect(scaledUp).toMatchObject({ process: 'up', app: 'on ring' });
  expect(scaledUp.share).toBeGreaterThan(0);

  // Pod kill: the killed member is ejected and gets no lookups after that; its failed
  // operations show in the errors column.
  const killed = steps.get(3)!.get('memcached-1')!;
  expect(killed).toMatchObject({ process: 'down', app: 'ejected', share: 0 });
  expect(killed.errors).toBeGreaterThan(0);
  for (const name of ['memcached-0', 'memcached-2', 'memcached-3']) {
    expect(steps.get(3)!.get(name)!.share).toBeGreaterThan(0);
  }

  // Restart: back on the ring, taking keys again.
  const back = steps.get(4)!.get('memcached-1')!;
  expect(back).toMatchObject({ process: 'up', app: 'on ring' });
  expect(back.share).toBeGreaterThan(0);

  // Scale-down: the removed member gets nothing; no errors from a graceful removal.
  const removed = steps.get(5)!.get('memcached-3')!;
  expect(removed).toMatchObject({ process: 'down', app: 'not in DNS', share: 0, errors: 0 });

  // No request failed in any step: a cache failure is a miss, never an error.
  const counts = [...run.output.matchAll(/^\s+(\d+) requests, (\d+) failed/gm)];
  expect(counts).toHaveLength(5);
  for (const [, requests, failed] of counts) {
    expect(Number(requests)).toBeGreaterThan(0);
    expect(Number(failed)).toBe(0);
  }

  // Everything it started is gone: 3 members, migrate, the app, the 4th member, the restart.
  const pids = stoppedPids(run.output);
  expect(pids).toHaveLength(7);
  expect(pids.filter(alive)).toEqual([]);
}

describe('npm run demo -- --quick', () => {
  it.skipIf(!memcachedAvailable())(
    'with the memcached binary: the 4th member takes keys, a killed one none',
    async () => {
      const run = await runDemo(['--subnet', '127.0.21']);
      expect(run.output).toMatch(/^memcached: memcached \d+\.\d+/m);
      expect(run.output).toContain('127.0.21.4:');
      expectDiscoveryWorked(run);
    },
    150_000,
  );

  it('with the embedded server (--embedded): the same walk, no binary involved', async () => {
    const run = await runDemo(['--embedded', '--subnet', '127.0.22']);
    expect(run.output).toMatch(/^memcached: embedded memcached-protocol server/m);
    expectDiscoveryWorked(run);
  }, 150_000);

  it('on Ctrl-C (SIGINT) mid-walk, stops every process it started and exits 130', async () => {
    let interrupted = false;
    const run = await runDemo(['--embedded', '--subnet', '127.0.22'], (output, child) => {
      // Once the 4th member runs: 5 processes up, the sample serving.
      if (!interrupted && output.includes('started memcached-3')) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });
    expect(interrupted, run.output).toBe(true);
    expect(run.code, run.output).toBe(130);
    const pids = stoppedPids(run.output);
    expect(pids.length).toBeGreaterThanOrEqual(6);
    expect(pids.filter(alive)).toEqual([]);
  }, 150_000);

  it('when something fails (the app dies), stops every process it started and exits 1', async () => {
    let killed = false;
    const run = await runDemo(['--embedded', '--subnet', '127.0.22'], (output) => {
      // The app, started by the demo, dies just as step 2 begins.
      const app = /^sample app: pid (\d+)/m.exec(output);
      if (!killed && app && output.includes('Step 2/5')) {
        killed = true;
        process.kill(Number(app[1]), 'SIGKILL');
      }
    });
    expect(killed, run.output).toBe(true);
    expect(run.code, run.output).toBe(1);
    expect(run.output).toMatch(/demo failed: the sample app \(pid \d+\) exited \(SIGKILL\)/);
    const pids = stoppedPids(run.output);
    expect(pids.length).toBeGreaterThanOrEqual(5);
    expect(pids.filter(alive)).toEqual([]);
  }, 150_000);

  it('refuses an address range outside loopback before starting anything', async () => {
    const run = await runDemo(['--subnet', '10.0.0']);
    expect(run.code).toBe(2);
    expect(run.output).toContain('--subnet takes three octets of 127.0.0.0/8');
    expect(run.output).not.toContain('started');
  });
});

describe('the embedded memcached server', () => {
  const HOST = '127.0.23.1';
  let child: ChildProcess;
  let port: number;

  /** Send raw protocol text on a fresh connection; resolves once the reply ends with `end`. */
  const send = (text: string, end = '\r\n'): Promise<string> =>
    new Promise((resolve, reject) => {
      const socket = createConnection({ host: HOST, port });
      let reply = '';
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new Error(
            `no reply to ${JSON.stringify(text)} within 3 s (got ${JSON.stringify(reply)})`,
          ),
        );
      }, 3_000);
      socket.on('connect', () => socket.write(text));
      socket.on('data', (chunk) => {
        reply += chunk.toString('latin1');
        if (reply.endsWith(end)) {
          clearTimeout(timer);
          socket.destroy();
          resolve(reply);
        }
      });
      socket.on('error', reject);
    });

  beforeAll(async () => {
    port = await freePort(HOST);
    child = spawn(
      process.execPath,
      ['scripts/demo/memcached-server.js', '-l', HOST, '-p', String(port)],
      {
        cwd: ROOT,
        stdio: 'ignore',
      },
    );
    // Bounded wait until it accepts connections.
    await waitFor(
      'the embedded server to accept connections',
      () =>
        send('version\r\n').then(
          () => true,
          () => false,
        ),
      5_000,
    );
  });

  afterAll(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
  });

  it('stores and retrieves as memcached does, pipelined', async () => {
    const reply = await send(
      'set a 5 0 3\r\nabc\r\nadd a 0 0 1\r\nx\r\nreplace b 0 0 1\r\nx\r\nadd b 7 0 2\r\nhi\r\n' +
        'get a b missing\r\n',
      'END\r\n',
    );
    expect(reply).toBe(
      'STORED\r\nNOT_STORED\r\nNOT_STORED\r\nSTORED\r\n' +
        'VALUE a 5 3\r\nabc\r\nVALUE b 7 2\r\nhi\r\nEND\r\n',
    );
  });

  it('answers a multi-get as long as the pool sends (100 keys of 250 bytes)', async () => {
    const keys = Array.from({ length: 100 }, (_, i) => `${i}`.padStart(250, 'k'));
    expect(await send(`set ${keys[42]} 0 0 1\r\nv\r\n`)).toBe('STORED\r\n');
    expect(await send(`get ${keys.join(' ')}\r\n`, 'END\r\n')).toBe(
      `VALUE ${keys[42]} 0 1\r\nv\r\nEND\r\n`,
    );
  });

  it('gets/cas, delete, touch, noreply, binary values', async () => {
    const gets = await send('set c 0 0 1\r\n1\r\ngets c\r\n', 'END\r\n');
    const cas = /VALUE c 0 1 (\d+)\r\n/.exec(gets)![1];
    expect(await send(`cas c 0 0 1 ${Number(cas) + 1}\r\n2\r\n`)).toBe('EXISTS\r\n');
    expect(await send(`cas c 0 0 1 ${cas}\r\n3\r\n`)).toBe('STORED\r\n');
    expect(await send('touch c 100\r\n')).toBe('TOUCHED\r\n');
    expect(await send('delete c\r\ndelete c\r\n', 'NOT_FOUND\r\n')).toBe(
      'DELETED\r\nNOT_FOUND\r\n',
    );
    expect(await send('touch c 100\r\n')).toBe('NOT_FOUND\r\n');
    // noreply: nothing comes back for the set; the get after it shows it was applied.
    expect(await send('set d 0 0 2 noreply\r\nok\r\nget d\r\n', 'END\r\n')).toBe(
      'VALUE d 0 2\r\nok\r\nEND\r\n',
    );
    // A value holding \r\n is data, not a command.
    expect(await send('set e 0 0 8\r\nx\r\nget d\r\nget e\r\n', 'END\r\n')).toBe(
      'STORED\r\nVALUE e 0 8\r\nx\r\nget d\r\nEND\r\n',
    );
  });

  it('expires: negative and past absolute times at once, relative seconds later', async () => {
    const past = Math.floor(Date.now() / 1000) - 60;
    expect(
      await send(
        `set f 0 -1 1\r\n1\r\nset g 0 ${past} 1\r\n1\r\nset h 0 1 1\r\n1\r\nget f g h\r\n`,
        'END\r\n',
      ),
    ).toBe('STORED\r\nSTORED\r\nSTORED\r\nVALUE h 0 1\r\n1\r\nEND\r\n');
    // Over 30 days is an absolute Unix time: one in the future keeps the item.
    const future = Math.floor(Date.now() / 1000) + 3600;
    expect(await send(`set i 0 ${future} 1\r\n1\r\nget i\r\n`, 'END\r\n')).toContain('VALUE i');
    await sleep(1_100);
    expect(await send('get h i\r\n', 'END\r\n')).toBe('VALUE i 0 1\r\n1\r\nEND\r\n');
  });

  it('refuses bad keys and commands, and reports stats with a memcached-like uptime', async () => {
    expect(await send(`get ${'k'.repeat(251)}\r\n`)).toBe(
      'CLIENT_ERROR bad command line format\r\n',
    );
    expect(await send('bogus\r\n')).toBe('ERROR\r\n');
    // An item of this test's own, so curr_items counts something whatever ran before.
    expect(await send('set stats-item 0 0 1\r\n1\r\n')).toBe('STORED\r\n');
    const stats = await send('stats\r\n', 'END\r\n');
    // memcached's clock starts 2 s back; the pool tells restarts apart by it.
    expect(Number(/STAT uptime (\d+)/.exec(stats)![1])).toBeGreaterThanOrEqual(2);
    expect(stats).toContain(`STAT pid ${child.pid}\r\n`);
    expect(Number(/STAT curr_items (\d+)/.exec(stats)![1])).toBeGreaterThan(0);
    expect(await send('flush_all\r\nget a b\r\n', 'END\r\n')).toBe('OK\r\nEND\r\n');
    expect(await send('stats\r\n', 'END\r\n')).toContain('STAT curr_items 0\r\n');
  });

  it('serves the MemcachedStore as a real memcached does (values, TTLs, deletes)', async () => {
    const store = new MemcachedStore({ host: `${HOST}:${port}` });
    const keyv = new Keyv({ store, namespace: 'embedded' });
    try {
      await keyv.set('object', { n: 1, s: 'x'.repeat(10_000) });
      await keyv.set('short', 'gone soon', 1_000);
      expect(await keyv.get('object')).toEqual({ n: 1, s: 'x'.repeat(10_000) });
      expect(await keyv.get('short')).toBe('gone soon');
      expect(await keyv.delete('object')).toBe(true);
      expect(await keyv.get('object')).toBeUndefined();
      expect(store.stats().totals.errors).toBe(0);
    } finally {
      await store.disconnect();
    }
  });
});
