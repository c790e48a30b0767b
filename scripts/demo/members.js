// The demo's memcached members: the real `memcached` binary when it is on PATH, otherwise the
// embedded memcached-protocol server next to this file, one process per member either way.
import { execFileSync } from 'node:child_process';
import { createConnection } from 'node:net';
import { fileURLToPath } from 'node:url';
import { isRunning, waitForPort } from './processes.js';

const EMBEDDED = fileURLToPath(new URL('./memcached-server.js', import.meta.url));

/**
 * Which memcached the demo runs.
 * @param {{ embedded: boolean }} options `embedded` forces the embedded server.
 * @returns {{ kind: 'binary' | 'embedded', path: string, describe: string }}
 */
export function memcachedImplementation({ embedded }) {
  const binary = embedded ? undefined : findBinary('memcached');
  if (binary) {
    let version = '';
    try {
      version = execFileSync(binary, ['-V'], { encoding: 'utf8', timeout: 5_000 }).trim();
    } catch {
      // Old builds lack -V; the path alone says enough.
    }
    return { kind: 'binary', path: binary, describe: `${version || 'memcached'} (${binary})` };
  }
  const why = embedded ? '--embedded given' : 'no memcached binary on PATH';
  return {
    kind: 'embedded',
    path: EMBEDDED,
    describe: `embedded memcached-protocol server, scripts/demo/memcached-server.js (${why})`,
  };
}

/** Start one member process on `host:port` and wait until it accepts connections. */
export async function startMember(processes, implementation, name, host, port) {
  const args = ['-l', host, '-p', String(port), '-m', '64'];
  const started =
    implementation.kind === 'binary'
      ? processes.start(implementation.path, [
          ...args,
          // TCP only, 2 threads; memcached refuses to run as root without -u.
          ...['-U', '0', '-t', '2'],
          ...(process.getuid?.() === 0 ? ['-u', 'root'] : []),
        ])
      : processes.start(process.execPath, [implementation.path, ...args]);
  try {
    await waitForPort(host, port, () => isRunning(started.child));
  } catch (error) {
    throw new Error(`${name} did not start: ${error.message}\n${started.output()}`, {
      cause: error,
    });
  }
  return started.child;
}

/** A member's `stats` as a map, or undefined when it does not answer within 1 s. */
export function memberStats(host, port) {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    let reply = '';
    const done = (stats) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(stats);
    };
    const timer = setTimeout(() => done(undefined), 1_000);
    socket.on('connect', () => socket.write('stats\r\n'));
    socket.on('error', () => done(undefined));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (!reply.endsWith('END\r\n')) return;
      const stats = {};
      for (const line of reply.split('\r\n')) {
        const [tag, key, value] = line.split(' ');
        if (tag === 'STAT') stats[key] = value;
      }
      done(stats);
    });
  });
}

function findBinary(name) {
  try {
    return (
      execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || undefined
    );
  } catch {
    return undefined;
  }
}
