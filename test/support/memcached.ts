import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions } from 'node:tls';
import { findBinary, serviceAvailable } from './services.js';
import { scaled } from './timing.js';
import { sleep, waitFor } from './wait-for.js';

/** A memcached process a test started. */
export interface MemcachedProcess {
  readonly host: string;
  readonly port: number;
  /** `host:port`, as `memberId` writes it. */
  readonly id: string;
  /** Pid of the running process (changes on restart). */
  readonly pid: number;
  /** Send a signal (SIGSTOP to hang it, SIGCONT to resume, SIGKILL to crash it). */
  kill(signal: NodeJS.Signals): void;
  /** SIGSTOP it (a hung server: connections open, no answers); resolves once it is stopped. */
  freeze(): Promise<void>;
  /** SIGCONT a frozen server. */
  thaw(): void;
  /** Stop it (resuming it first if it was stopped); resolves when it has exited. */
  stop(): Promise<void>;
  /** Start it again on the same address, empty; resolves when it accepts connections. */
  restart(): Promise<void>;
  /** Send raw protocol text on a fresh connection; resolves with the reply once `done` matches it. */
  command(text: string, done?: (reply: string) => boolean): Promise<string>;
  /** `stats` as a map. */
  stats(): Promise<Record<string, string>>;
}

const BINARY = process.env.MEMCACHED_BIN ?? findBinary('memcached') ?? '/usr/bin/memcached';
const running = new Set<Instance>();

/** True when memcached tests can run; under CI a missing binary throws (fails the run loudly). */
export function memcachedAvailable(): boolean {
  return serviceAvailable(
    'memcached',
    findBinary('memcached') !== undefined || process.env.MEMCACHED_BIN !== undefined,
    'no memcached binary on PATH; apt-get install memcached',
  );
}

/** A port free on `host` right now (the OS picks it). */
export async function freePort(host: string): Promise<number> {
  const server = createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * Start a memcached on `host` (a 127.0.0.0/8 address; pick distinct ones per test file) and a
 * free port, and wait (bounded) until it accepts connections. `stopAllMemcached()` stops every
 * process started here.
 */
export async function startMemcached(options: {
  host: string;
  port?: number;
  /** Extra memcached arguments (e.g. `['-I', '2m']`). */
  args?: string[];
  /** The server speaks TLS (`-Z` in `args`): `command()` and `stats()` connect with these options. */
  tls?: ConnectionOptions;
}): Promise<MemcachedProcess> {
  const instance = new Instance(
    options.host,
    options.port ?? (await freePort(options.host)),
    options.args ?? [],
    options.tls,
  );
  await instance.start();
  return instance;
}

/** Stop every memcached this module started (for afterAll). */
export async function stopAllMemcached(): Promise<void> {
  await Promise.all([...running].map((instance) => instance.stop()));
}

/**
 * Values of raw (already prefixed) keys as the server holds them, asked with `get` in batches of
 * 100; missing keys are absent. Values are read by their byte length (latin1 text), so values
 * holding CR LF or `END` come back whole.
 */
export async function rawGetMany(
  server: MemcachedProcess,
  keys: readonly string[],
): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (let i = 0; i < keys.length; i += 100) {
    const reply = await server.command(`get ${keys.slice(i, i + 100).join(' ')}\r\n`, endsWithEnd);
    let at = 0;
    for (;;) {
      const header = /^VALUE (\S+) \d+ (\d+)\r\n/.exec(reply.slice(at));
      if (header === null) break;
      const start = at + header[0].length;
      found.set(header[1], reply.slice(start, start + Number(header[2])));
      at = start + Number(header[2]) + 2;
    }
  }
  return found;
}

/** The value of one raw key on one server, or undefined when it does not hold it. */
export async function rawGet(server: MemcachedProcess, key: string): Promise<string | undefined> {
  return (await rawGetMany(server, [key])).get(key);
}

class Instance implements MemcachedProcess {
  readonly id: string;
  private child: ChildProcess | undefined;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly args: string[],
    private readonly tls?: ConnectionOptions,
  ) {
    this.id = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  }

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  async start(): Promise<void> {
    const args = ['-l', this.host, '-p', String(this.port), '-U', '0', '-m', '64', '-t', '2'];
    if (process.getuid?.() === 0) args.push('-u', 'root');
    const child = spawn(BINARY, [...args, ...this.args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    this.child = child;
    running.add(this);
    const deadline = Date.now() + scaled(5_000);
    while (!(await canConnect(this.host, this.port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        await this.stop();
        throw new Error(`memcached on ${this.id} did not start: ${stderr.trim() || 'no output'}`);
      }
      await sleep(20);
    }
  }

  kill(signal: NodeJS.Signals): void {
    if (this.child?.pid !== undefined && this.child.exitCode === null) this.child.kill(signal);
  }

  async freeze(): Promise<void> {
    this.kill('SIGSTOP');
    // The signal is delivered asynchronously: wait until the kernel reports the process stopped.
    await waitFor(
      `memcached ${this.id} (pid ${this.pid}) to stop after SIGSTOP`,
      async () => /\) [tT] /.test(await readFile(`/proc/${this.pid}/stat`, 'utf8').catch(() => '')),
      2_000,
    );
  }

  thaw(): void {
    this.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    running.delete(this);
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
    await exited;
    clearTimeout(timer);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  command(text: string, done: (reply: string) => boolean = endsWithLine): Promise<string> {
    return new Promise((resolve, reject) => {
      const address = { host: this.host, port: this.port };
      const socket = this.tls ? tlsConnect({ ...this.tls, ...address }) : createConnection(address);
      let reply = '';
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`memcached ${this.id} did not answer ${JSON.stringify(text)} in 3 s`));
      }, 3_000);
      socket.on(this.tls ? 'secureConnect' : 'connect', () => socket.write(text));
      socket.on('data', (chunk) => {
        reply += chunk.toString('latin1');
        if (done(reply)) {
          clearTimeout(timer);
          socket.destroy();
          resolve(reply);
        }
      });
      socket.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  async stats(): Promise<Record<string, string>> {
    const reply = await this.command('stats\r\n', (r) => r.endsWith('END\r\n'));
    const stats: Record<string, string> = {};
    for (const line of reply.split('\r\n')) {
      const [tag, name, value] = line.split(' ');
      if (tag === 'STAT') stats[name] = value;
    }
    return stats;
  }
}

function endsWithLine(reply: string): boolean {
  return reply.endsWith('\r\n');
}

/** A retrieval reply is complete once it ends with END. */
function endsWithEnd(reply: string): boolean {
  return reply.endsWith('END\r\n');
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
