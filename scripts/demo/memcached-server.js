// A small memcached text-protocol server in plain Node, for machines without the memcached
// binary: the demo runs one per member, each in its own process (so a "pod kill" is a real
// SIGKILL). It implements what nestjs-k8s and memcache-client send, with memcached's rules:
//   get/gets KEY…, set/add/replace/cas KEY FLAGS EXPTIME BYTES [CAS] [noreply], delete KEY,
//   touch KEY EXPTIME, version, stats (pid, uptime, curr_items, hits…), flush_all [DELAY], quit.
// Exptime: 0 never expires, a negative one expires at once, up to 30 days it is relative
// seconds, above that an absolute Unix time. Memory is bounded (`-m` MB, least recently used
// entries evicted first), values are limited to 1 MB and keys to 250 bytes without spaces or
// control characters, as memcached does.
//
// Usage: node scripts/demo/memcached-server.js -l 127.0.20.1 -p 11211 [-m 64]
import { createServer } from 'node:net';
import { pathToFileURL } from 'node:url';

const EMBEDDED_VERSION = '1.6.0-nestjs-k8s-demo';

const THIRTY_DAYS = 2_592_000;
const MAX_KEY_LENGTH = 250;
const MAX_VALUE_SIZE = 1024 * 1024;
/**
 * Longest command line accepted: a multi-get line grows with its keys; 64 kB holds the 100 keys
 * of 250 bytes the nestjs-k8s pool sends at most in one get.
 */
const MAX_LINE = 65_536;
/** memcached starts its clock 2 s in the past; nestjs-k8s reads `uptime` knowing that. */
const UPTIME_AT_START = 2;
/** Rough per-item overhead, so `-m` bounds real memory use and not only value bytes. */
const ITEM_OVERHEAD = 64;

const CRLF = Buffer.from('\r\n');
const STORAGE = new Set(['set', 'add', 'replace', 'cas']);

/**
 * A memcached-protocol server (not yet listening). `listen(port, host)` it like any `net.Server`.
 * @param {{ memoryLimitBytes?: number }} [options]
 */
export function createMemcachedServer(options = {}) {
  const memoryLimit = options.memoryLimitBytes ?? 64 * 1024 * 1024;
  const now = Date.now;
  const startedAt = now();
  /** @type {Map<string, { flags: string, data: Buffer, expiresAt: number, cas: number }>} */
  const items = new Map(); // insertion order = least recently used first
  const counters = {
    cmd_get: 0,
    cmd_set: 0,
    cmd_touch: 0,
    get_hits: 0,
    get_misses: 0,
    delete_hits: 0,
    delete_misses: 0,
    touch_hits: 0,
    touch_misses: 0,
    total_items: 0,
    evictions: 0,
    total_connections: 0,
  };
  let bytes = 0;
  let nextCas = 1;
  let connections = 0;
  /** Items whose cas is below this were stored before the last `flush_all`: they are gone. */
  let flushedBelow = 0;
  /** A delayed `flush_all`. */
  let flushTimer;

  const size = (key, item) => key.length + item.data.length + ITEM_OVERHEAD;

  const remove = (key) => {
    const item = items.get(key);
    if (!item) return;
    bytes -= size(key, item);
    items.delete(key);
  };

  const live = (item) =>
    (item.expiresAt === 0 || now() < item.expiresAt) && item.cas >= flushedBelow;

  /** The live item under `key` (expired ones are dropped here, lazily, as memcached does). */
  const lookup = (key) => {
    const item = items.get(key);
    if (!item) return undefined;
    if (!live(item)) {
      remove(key);
      return undefined;
    }
    // Most recently used last.
    items.delete(key);
    items.set(key, item);
    return item;
  };

  /** Expiry time in ms from a memcached exptime; -1 for "already expired". */
  const expiresAt = (exptime) => {
    if (exptime === 0) return 0;
    if (exptime < 0) return -1;
    if (exptime <= THIRTY_DAYS) return now() + exptime * 1000;
    const absolute = exptime * 1000;
    return absolute <= now() ? -1 : absolute;
  };

  const store = (key, item) => {
    remove(key);
    items.set(key, item);
    bytes += size(key, item);
    counters.total_items++;
    for (const [oldest, old] of items) {
      if (bytes <= memoryLimit || oldest === key) break;
      bytes -= size(oldest, old);
      items.delete(oldest);
      counters.evictions++;
    }
  };

  const statsReply = () => {
    const uptime = Math.floor((now() - startedAt) / 1000) + UPTIME_AT_START;
    const stats = {
      pid: process.pid,
      uptime,
      time: Math.floor(now() / 1000),
      version: EMBEDDED_VERSION,
      curr_connections: connections,
      ...counters,
      curr_items: [...items.values()].filter(live).length,
      bytes,
      limit_maxbytes: memoryLimit,
    };
    return Object.entries(stats)
      .map(([name, value]) => `STAT ${name} ${value}\r\n`)
      .concat('END\r\n')
      .join('');
  };

  const validKey = (key) =>
    key !== undefined &&
    Buffer.byteLength(key) <= MAX_KEY_LENGTH &&
    // Printable ASCII only: no spaces or control characters (the line was split on spaces).
    /^[\x21-\x7e]+$/.test(key);

  /**
   * Handle one complete command line; returns the reply text (may be empty for noreply), or
   * `null` to close the connection.
   */
  const command = (line, data) => {
    const words = line.split(' ').filter(Boolean);
    const [name, ...args] = words;
    const noreply = args.at(-1) === 'noreply';
    const reply = (text) => (noreply ? '' : text);
    switch (name) {
      case 'get':
      case 'gets': {
        if (args.length === 0 || !args.every(validKey))
          return 'CLIENT_ERROR bad command line format\r\n';
        const parts = [];
        for (const key of args) {
          counters.cmd_get++;
          const item = lookup(key);
          if (!item) {
            counters.get_misses++;
            continue;
          }
          counters.get_hits++;
          const cas = name === 'gets' ? ` ${item.cas}` : '';
          parts.push(
            Buffer.from(`VALUE ${key} ${item.flags} ${item.data.length}${cas}\r\n`),
            item.data,
            CRLF,
          );
        }
        parts.push(Buffer.from('END\r\n'));
        return Buffer.concat(parts);
      }
      case 'set':
      case 'add':
      case 'replace':
      case 'cas': {
        const [key, flags, exptime, , cas] = args;
        counters.cmd_set++;
        if (data.length > MAX_VALUE_SIZE)
          return reply('SERVER_ERROR object too large for cache\r\n');
        const existing = lookup(key);
        if (name === 'add' && existing) return reply('NOT_STORED\r\n');
        if (name === 'replace' && !existing) return reply('NOT_STORED\r\n');
        if (name === 'cas') {
          if (!existing) return reply('NOT_FOUND\r\n');
          if (String(existing.cas) !== cas) return reply('EXISTS\r\n');
        }
        const expiry = expiresAt(Number(exptime));
        // memcached stores an already expired item by not keeping it: the reply is still STORED.
        if (expiry === -1) remove(key);
        else store(key, { flags, data, expiresAt: expiry, cas: nextCas++ });
        return reply('STORED\r\n');
      }
      case 'delete': {
        if (!validKey(args[0])) return 'CLIENT_ERROR bad command line format\r\n';
        if (!lookup(args[0])) {
          counters.delete_misses++;
          return reply('NOT_FOUND\r\n');
        }
        counters.delete_hits++;
        remove(args[0]);
        return reply('DELETED\r\n');
      }
      case 'touch': {
        const [key, exptime] = args;
        if (!validKey(key) || !/^-?\d+$/.test(exptime ?? '')) {
          return 'CLIENT_ERROR bad command line format\r\n';
        }
        counters.cmd_touch++;
        const item = lookup(key);
        if (!item) {
          counters.touch_misses++;
          return reply('NOT_FOUND\r\n');
        }
        counters.touch_hits++;
        const expiry = expiresAt(Number(exptime));
        if (expiry === -1) remove(key);
        else item.expiresAt = expiry;
        return reply('TOUCHED\r\n');
      }
      case 'version':
        return `VERSION ${EMBEDDED_VERSION}\r\n`;
      case 'stats':
        // Only the general statistics; `stats items`, `stats slabs` … answer an empty list.
        return args.length === 0 ? statsReply() : 'END\r\n';
      case 'flush_all': {
        const delay = args[0] !== undefined && args[0] !== 'noreply' ? Number(args[0]) : 0;
        if (!Number.isInteger(delay) || delay < 0)
          return 'CLIENT_ERROR bad command line format\r\n';
        clearTimeout(flushTimer);
        const flush = () => (flushedBelow = nextCas);
        if (delay === 0) flush();
        else flushTimer = setTimeout(flush, delay * 1000).unref();
        return reply('OK\r\n');
      }
      case 'quit':
        return null;
      default:
        return 'ERROR\r\n';
    }
  };

  const server = createServer((socket) => {
    connections++;
    counters.total_connections++;
    socket.setNoDelay(true);
    let buffer = Buffer.alloc(0);
    socket.on('close', () => connections--);
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk) => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      // Every complete command in the buffer, in order (clients pipeline).
      for (;;) {
        const end = buffer.indexOf(CRLF);
        if (end < 0) {
          if (buffer.length > MAX_LINE) {
            socket.end('CLIENT_ERROR line too long\r\n');
            buffer = Buffer.alloc(0);
          }
          return;
        }
        const line = buffer.subarray(0, end).toString('latin1');
        const space = line.indexOf(' ');
        const name = space < 0 ? line : line.slice(0, space);
        let data = Buffer.alloc(0);
        let consumed = end + 2;
        if (STORAGE.has(name)) {
          const args = line.split(' ').filter(Boolean).slice(1);
          const length = Number(args[3]);
          const wellFormed =
            validKey(args[0]) &&
            /^\d+$/.test(args[1] ?? '') &&
            /^-?\d+$/.test(args[2] ?? '') &&
            /^\d+$/.test(args[3] ?? '') &&
            (name !== 'cas' || /^\d+$/.test(args[4] ?? ''));
          if (!wellFormed) {
            // The data block cannot be skipped safely without a length: close, as memcached does.
            socket.end('CLIENT_ERROR bad command line format\r\n');
            buffer = Buffer.alloc(0);
            return;
          }
          if (buffer.length < consumed + length + 2) return; // the data block is not all here yet
          data = Buffer.from(buffer.subarray(consumed, consumed + length));
          if (!buffer.subarray(consumed + length, consumed + length + 2).equals(CRLF)) {
            socket.end('CLIENT_ERROR bad data chunk\r\n');
            buffer = Buffer.alloc(0);
            return;
          }
          consumed += length + 2;
        }
        buffer = buffer.subarray(consumed);
        const reply = command(line, data);
        if (reply === null) {
          socket.end();
          return;
        }
        if (reply.length > 0) socket.write(reply);
      }
    });
  });
  return server;
}

/** `-l HOST -p PORT [-m MB]`, the memcached flags the demo passes. */
function parseArgs(argv) {
  const options = { host: '127.0.0.1', port: 11211, megabytes: 64 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '-l') options.host = value;
    else if (flag === '-p') options.port = Number(value);
    else if (flag === '-m') options.megabytes = Number(value);
    else
      throw new Error(`memcached-server.js: unknown option ${flag}; use -l HOST -p PORT [-m MB]`);
  }
  return options;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { host, port, megabytes } = parseArgs(process.argv.slice(2));
  const server = createMemcachedServer({ memoryLimitBytes: megabytes * 1024 * 1024 });
  server.on('error', (error) => {
    console.error(`memcached-server.js: ${error.message}`);
    process.exitCode = 1;
  });
  server.listen(port, host);
  // Clients keep their connections open, so waiting for close() could take forever: exit now.
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
}
