import { once } from 'node:events';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { freePort } from './memcached.js';

/** One command a client sent, as the hostile member read it. */
export interface ReceivedCommand {
  /** `get`, `set`, `add`, `delete`, `stats`, … */
  readonly verb: string;
  /** Keys of a get; the key of a store or delete. */
  readonly keys: readonly string[];
  readonly flags: number;
  readonly data: Buffer | undefined;
}

/**
 * What the member writes back for `command`: `honest` is what memcached would answer (from the
 * member's own in-memory items); return it, something else, or undefined to stay silent. `socket`
 * is there for scripts that stream or keep writing.
 */
export type HostileScript = (
  command: ReceivedCommand,
  honest: Buffer,
  socket: Socket,
) => string | Buffer | undefined;

/** An honest member (the default script). */
export const honest: HostileScript = (_, reply) => reply;

/**
 * A scripted memcached on a loopback address that speaks the protocol wrongly on purpose: an
 * in-memory memcached (get, set, add, delete, stats) whose every reply passes through `script`,
 * which a test swaps at will. Its `stats` report a long uptime (it never "restarted").
 */
export class HostileMember {
  script: HostileScript = honest;
  /** Commands received, by verb. */
  readonly received = new Map<string, number>();
  readonly items = new Map<string, { flags: number; data: Buffer }>();
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly host: string,
    readonly port: number,
  ) {
    server.on('connection', (socket) => this.serve(socket));
  }

  /** Listen on `host` (127.0.x.y) and a free port. */
  static async start(host: string): Promise<HostileMember> {
    const port = await freePort(host);
    const server = createServer();
    server.listen(port, host);
    await once(server, 'listening');
    return new HostileMember(server, host, port);
  }

  /** `host:port`, as `memberId` writes it. */
  get id(): string {
    return `${this.host}:${this.port}`;
  }

  /** As a pool member. */
  get member(): { host: string; port: number } {
    return { host: this.host, port: this.port };
  }

  /** Close every connection (clients reconnect on their next command). */
  dropConnections(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  async stop(): Promise<void> {
    this.dropConnections();
    this.server.close();
    await once(this.server, 'close').catch(() => undefined);
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      for (;;) {
        const end = pending.indexOf('\r\n');
        if (end < 0) return;
        const tokens = pending.toString('latin1', 0, end).split(' ');
        const verb = tokens[0];
        let data: Buffer | undefined;
        let consumed = end + 2;
        if (verb === 'set' || verb === 'add') {
          const bytes = Number(tokens[4]);
          if (pending.length < consumed + bytes + 2) return;
          data = Buffer.from(pending.subarray(consumed, consumed + bytes));
          consumed += bytes + 2;
        }
        pending = pending.subarray(consumed);
        const command: ReceivedCommand = {
          verb,
          keys: verb === 'get' ? tokens.slice(1) : tokens.slice(1, 2),
          flags: Number(tokens[2] ?? 0),
          data,
        };
        this.received.set(verb, (this.received.get(verb) ?? 0) + 1);
        const reply = this.script(command, this.execute(command), socket);
        if (reply !== undefined && !socket.destroyed) socket.write(reply);
      }
    });
  }

  /** What memcached would do and answer. */
  private execute(command: ReceivedCommand): Buffer {
    const [key] = command.keys;
    switch (command.verb) {
      case 'get': {
        const parts: Buffer[] = [];
        for (const k of command.keys) {
          const item = this.items.get(k);
          if (item === undefined) continue;
          parts.push(
            Buffer.from(`VALUE ${k} ${item.flags} ${item.data.length}\r\n`),
            item.data,
            CRLF,
          );
        }
        parts.push(Buffer.from('END\r\n'));
        return Buffer.concat(parts);
      }
      case 'set':
        this.items.set(key, { flags: command.flags, data: command.data! });
        return Buffer.from('STORED\r\n');
      case 'add':
        if (this.items.has(key)) return Buffer.from('NOT_STORED\r\n');
        this.items.set(key, { flags: command.flags, data: command.data! });
        return Buffer.from('STORED\r\n');
      case 'delete':
        return Buffer.from(this.items.delete(key) ? 'DELETED\r\n' : 'NOT_FOUND\r\n');
      case 'stats':
        return Buffer.from(
          `STAT pid 1\r\nSTAT uptime 100000\r\nSTAT curr_items ${this.items.size}\r\nEND\r\n`,
        );
      default:
        return Buffer.from('ERROR\r\n');
    }
  }
}

const CRLF = Buffer.from('\r\n');
