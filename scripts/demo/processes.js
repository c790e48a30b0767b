// Every process the demo starts goes through here, so that it can stop each one by its pid,
// also after an error or a Ctrl-C, and say which pids it started.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createConnection, createServer } from 'node:net';

/** The processes the demo started. */
export class Processes {
  /** @type {import('node:child_process').ChildProcess[]} */
  #started = [];

  /**
   * Start `command args` with its output kept (not shown) for when something goes wrong.
   * @returns {{ child: import('node:child_process').ChildProcess, output: () => string }}
   */
  start(command, args, options = {}) {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let output = '';
    const keep = (chunk) => {
      // The last 64 kB is plenty to say why something failed.
      output = (output + chunk.toString()).slice(-65_536);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    // A failed spawn (no such binary) is reported by the caller's wait; don't crash on it here.
    child.on('error', () => undefined);
    this.#started.push(child);
    return { child, output: () => output };
  }

  /** Pids of every process started so far, in order. */
  pids() {
    return this.#started.map((child) => child.pid).filter((pid) => pid !== undefined);
  }

  /**
   * Stop every process still running: SIGTERM by pid, SIGKILL for any still there after 3 s.
   * Resolves once all have exited.
   */
  async stopAll() {
    const running = this.#started.filter(isRunning);
    await Promise.all(
      running.map(async (child) => {
        const exited = once(child, 'exit');
        signal(child, 'SIGTERM');
        const timer = setTimeout(() => signal(child, 'SIGKILL'), 3_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}

/**
 * Send `name` to `child`'s pid if it still runs. A child that exits meanwhile (Ctrl-C reaches
 * the whole process group, so members may be exiting already) is not an error.
 */
export function signal(child, name) {
  if (!isRunning(child)) return;
  try {
    process.kill(child.pid, name);
  } catch (error) {
    if (error.code !== 'ESRCH') throw error;
  }
}

/** True while `child` was spawned and has not exited. */
export function isRunning(child) {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

/** Run a process to its end (bounded): its exit code and output. */
export async function runToEnd(processes, command, args, options = {}, timeoutMs = 30_000) {
  const { child, output } = processes.start(command, args, options);
  const timer = setTimeout(() => signal(child, 'SIGKILL'), timeoutMs);
  const [code] = await once(child, 'exit');
  clearTimeout(timer);
  return { code, output: output() };
}

/** A TCP port free on `host` right now (the OS picks it). */
export async function freePort(host) {
  const server = createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/** Resolves once `host:port` accepts a TCP connection; rejects after `timeoutMs` or if `alive()` turns false. */
export async function waitForPort(host, port, alive, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await canConnect(host, port))) {
    if (!alive()) throw new Error(`the process meant to listen on ${host}:${port} exited`);
    if (Date.now() > deadline)
      throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await sleep(20);
  }
}

function canConnect(host, port) {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
