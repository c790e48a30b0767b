import { Packet, TCPServer, UDPServer } from 'dns2';
import type { DnsHandler, Resource } from 'dns2';
import { randomBytes } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { Socket } from 'node:net';

/**
 * A real DNS server on loopback for tests (dns2 over UDP and TCP on one port), whose answers the
 * test sets and changes at run time. Point the code under test at it with
 * `dnsServers: [server.address]`.
 *
 * Names are case-insensitive and a trailing dot is ignored. A name nobody set answers NXDOMAIN.
 *
 * ```ts
 * const dns = await startDnsServer();
 * dns.setA('mycache', ['127.0.0.2', '127.0.0.3']);
 * dns.setSrv('_memcache._tcp.mycache', [{ port: 11311, target: 'pod-0.mycache' }]);
 * // … dnsServers: [dns.address] …
 * dns.setNxdomain('mycache'); // the Service has no ready pods
 * dns.setSilent(true);        // every query is dropped: lookups time out
 * expect(dns.queryCount('mycache', 'A')).toBe(1);
 * dns.queryTimes('mycache', 'A'); // [epoch ms of each query, in the order they came]
 * await dns.close();
 * ```
 */
export interface TestDnsServer {
  /** `127.0.0.1:PORT` (`[::1]:PORT` for IPv6), the form `dnsServers` takes. */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  /** Answer A queries for `name` with these addresses (replaces earlier A records, keeps the rest). */
  setA(name: string, addresses: readonly string[]): void;
  /** Answer AAAA queries for `name` with these addresses. */
  setAAAA(name: string, addresses: readonly string[]): void;
  /** Answer SRV queries for `name` with these records (priority and weight default to 0 and 10). */
  setSrv(name: string, records: readonly SrvRecordSpec[]): void;
  /** Forget every record of `name`: it answers NXDOMAIN (a headless Service with no ready pod). */
  setNxdomain(name: string): void;
  /** `name` answers NOERROR with no records, for every type (NODATA). */
  setEmpty(name: string): void;
  /** `name` answers SERVFAIL (an upstream failure the resolver cannot work around). */
  setServfail(name: string): void;
  /**
   * `name` answers malformed packets built from its current records (see {@link GarbageKind});
   * `setA`/`setAAAA`/`setSrv` afterwards change the records and answer properly again.
   */
  setGarbage(name: string, kind: GarbageKind): void;
  /**
   * Drop queries without answering (lookups time out): every query when `name` is omitted,
   * otherwise only those for `name`. `setSilent(false)` answers again.
   */
  setSilent(silent: boolean, name?: string): void;
  /** Queries received for `name` (of one record type, or all types), dropped ones included. */
  queryCount(name: string, type?: RecordType): number;
  /**
   * When each query for `name` (of one record type, or all types) arrived, in epoch ms, oldest
   * first, dropped ones included. Taken when the server handles it, so event-loop lag applies.
   */
  queryTimes(name: string, type?: RecordType): number[];
  /** Zero every query counter and forget the query times. */
  resetCounts(): void;
  /** Stop answering and free the port. Idempotent. */
  close(): Promise<void>;
}

/** One SRV record to answer. */
export interface SrvRecordSpec {
  readonly target: string;
  readonly port: number;
  readonly priority?: number;
  readonly weight?: number;
}

/**
 * Malformed answers: `random` bytes; `wrong-id`, a well-formed answer whose transaction id is not
 * the query's (what a spoofer guessing ids sends); `truncated`, a well-formed answer cut in the
 * middle of its records without the TC bit.
 */
export type GarbageKind = 'random' | 'wrong-id' | 'truncated';

/** Record types the server answers; any other type gets NOERROR with no records. */
export type RecordType = 'A' | 'AAAA' | 'SRV';

/** Options of `startDnsServer`. */
export interface StartDnsServerOptions {
  /** Loopback address to listen on (IPv4 or IPv6). @default '127.0.0.1' */
  address?: string;
  /** TTL of every answer, in seconds; 0 keeps resolvers from caching. @default 0 */
  ttl?: number;
}

// RFC 1035 §4.1.1 response codes (dns2 has them at run time, its typings do not).
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;

type Mode = 'records' | 'nxdomain' | 'empty' | 'servfail' | 'garbage';

interface Entry {
  mode: Mode;
  garbage?: GarbageKind;
  a: string[];
  aaaa: string[];
  srv: SrvRecordSpec[];
}

const TYPE_NAMES = new Map<number, RecordType>([
  [Packet.TYPE.A, 'A'],
  [Packet.TYPE.AAAA, 'AAAA'],
  [Packet.TYPE.SRV, 'SRV'],
]);

function key(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** Start a DNS server on a free port of `address` (UDP, and TCP on the same port). */
export async function startDnsServer(options: StartDnsServerOptions = {}): Promise<TestDnsServer> {
  const host = options.address ?? '127.0.0.1';
  const ttl = options.ttl ?? 0;
  const entries = new Map<string, Entry>();
  const counts = new Map<string, number>();
  /** Arrival times (epoch ms) per `name/type`, oldest first. */
  const times = new Map<string, number[]>();
  const silentNames = new Set<string>();
  let silentAll = false;

  const entry = (name: string): Entry => {
    let e = entries.get(key(name));
    if (!e) entries.set(key(name), (e = { mode: 'records', a: [], aaaa: [], srv: [] }));
    return e;
  };

  const handle: DnsHandler = (request, send) => {
    const [question] = request.questions;
    if (!question) return;
    const name = key(question.name);
    const type = TYPE_NAMES.get(question.type);
    const counter = `${name}/${type ?? question.type}`;
    counts.set(counter, (counts.get(counter) ?? 0) + 1);
    let arrivals = times.get(counter);
    if (!arrivals) times.set(counter, (arrivals = []));
    arrivals.push(Date.now());
    if (silentAll || silentNames.has(name)) return;

    const response = Packet.createResponseFromRequest(request);
    response.header.aa = 1;
    const e = entries.get(name);
    if (!e || e.mode === 'nxdomain') response.header.rcode = RCODE_NXDOMAIN;
    else if (e.mode === 'servfail') response.header.rcode = RCODE_SERVFAIL;
    else if (e.mode === 'records' || e.mode === 'garbage') {
      const answer = (record: Partial<Resource>) =>
        response.answers.push(
          Packet.createResourceFromQuestion(question, { class: Packet.CLASS.IN, ttl, ...record }),
        );
      if (type === 'A') for (const address of e.a) answer({ address });
      if (type === 'AAAA') for (const address of e.aaaa) answer({ address });
      if (type === 'SRV') {
        for (const r of e.srv) {
          answer({
            priority: r.priority ?? 0,
            weight: r.weight ?? 10,
            port: r.port,
            target: r.target,
          });
        }
      }
    }
    // The client may be gone (a timed-out query): nothing to do about a failed send. dns2's
    // TCP send returns nothing (its UDP send a promise): calling .catch on that would throw,
    // and dns2 would then destroy the connection before a large answer is flushed.
    void Promise.resolve(send(e?.garbage ? malformed(response, e.garbage) : response)).catch(
      () => undefined,
    );
  };

  // Resolvers switch to TCP for truncated answers, on the same port: take a port free for both
  // (a port the OS gives for UDP may be in use for TCP, e.g. by an outgoing connection).
  let udp!: InstanceType<typeof UDPServer>;
  let tcp!: InstanceType<typeof TCPServer>;
  let port = 0;
  let tcpListening = false;
  const tcpSockets = new Set<Socket>();
  for (let attempt = 0; attempt < 20 && !tcpListening; attempt++) {
    if (udp) await new Promise<void>((resolve) => udp.close(() => resolve()));
    udp = new UDPServer({ type: isIPv6(host) ? 'udp6' : 'udp4' });
    udp.on('request', handle);
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, host, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    port = udp.address().port;
    tcp = new TCPServer();
    tcp.on('request', handle);
    tcp.on('connection', (socket: Socket) => {
      tcpSockets.add(socket);
      socket.once('close', () => tcpSockets.delete(socket));
    });
    tcpListening = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, host, () => resolve(true));
    });
  }

  let closed: Promise<void> | undefined;
  return {
    address: isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`,
    host,
    port,
    setA: (name, addresses) => {
      const e = entry(name);
      e.mode = 'records';
      e.garbage = undefined;
      e.a = [...addresses];
    },
    setAAAA: (name, addresses) => {
      const e = entry(name);
      e.mode = 'records';
      e.garbage = undefined;
      e.aaaa = [...addresses];
    },
    setSrv: (name, records) => {
      const e = entry(name);
      e.mode = 'records';
      e.garbage = undefined;
      e.srv = records.map((r) => ({ ...r }));
    },
    setNxdomain: (name) => {
      entries.set(key(name), { mode: 'nxdomain', a: [], aaaa: [], srv: [] });
    },
    setEmpty: (name) => {
      entries.set(key(name), { mode: 'empty', a: [], aaaa: [], srv: [] });
    },
    setServfail: (name) => {
      entries.set(key(name), { mode: 'servfail', a: [], aaaa: [], srv: [] });
    },
    setGarbage: (name, kind) => {
      const e = entry(name);
      e.mode = 'garbage';
      e.garbage = kind;
    },
    setSilent: (silent, name) => {
      if (name === undefined) silentAll = silent;
      else if (silent) silentNames.add(key(name));
      else silentNames.delete(key(name));
    },
    queryCount: (name, type) => {
      if (type) return counts.get(`${key(name)}/${type}`) ?? 0;
      let total = 0;
      for (const [k, n] of counts) if (k.startsWith(`${key(name)}/`)) total += n;
      return total;
    },
    queryTimes: (name, type) => {
      if (type) return [...(times.get(`${key(name)}/${type}`) ?? [])];
      const all: number[] = [];
      for (const [k, arrivals] of times) if (k.startsWith(`${key(name)}/`)) all.push(...arrivals);
      return all.sort((a, b) => a - b);
    },
    resetCounts: () => {
      counts.clear();
      times.clear();
    },
    close: () =>
      (closed ??= Promise.all([
        new Promise<void>((resolve) => udp.close(() => resolve())),
        tcpListening
          ? new Promise<void>((resolve) => {
              tcp.close(() => resolve());
              // Open TCP connections would hold close() until their idle timeout.
              for (const socket of tcpSockets) socket.destroy();
            })
          : Promise.resolve(),
      ]).then(() => undefined)),
  };
}

/** The bytes of `response` spoiled as `kind` says. */
function malformed(response: Packet, kind: GarbageKind): Buffer {
  const bytes = response.toBuffer();
  if (kind === 'random') return randomBytes(bytes.length);
  if (kind === 'wrong-id') {
    bytes.writeUInt16BE(bytes.readUInt16BE(0) ^ 0x5a5a, 0);
    return bytes;
  }
  // Header and question intact, records cut off mid-way (at least the header stays whole).
  return bytes.subarray(0, Math.max(12, bytes.length - 7));
}
