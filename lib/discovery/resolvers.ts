import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import { DnsLookupError } from '../errors/discovery.errors.js';
import { K8sOptionsError } from '../errors/k8s.error.js';

/** One SRV answer: the target host name and the port it serves on. */
export interface SrvAnswer {
  readonly name: string;
  readonly port: number;
}

/**
 * Turns names into addresses for `MemberDiscovery`. Contract: "no such name" (NXDOMAIN) and
 * "no records" (NODATA) resolve to an empty array; a lookup that could not be answered
 * (unreachable server, timeout, SERVFAIL) rejects, preferably with a `DnsLookupError`.
 */
export interface Resolver {
  /** Every IPv4 and IPv6 address of `name`. */
  lookupHost(name: string): Promise<string[]>;
  /** The SRV answers of `name` (targets are not resolved). */
  resolveSrv(name: string): Promise<SrvAnswer[]>;
  /** Abort lookups in flight (called on shutdown so no socket outlives the app). */
  cancel?(): void;
}

/** Signature of `dns.promises.lookup(name, { all: true })`, injectable for tests. */
export type SystemLookupFunction = (
  hostname: string,
  options: { all: true },
) => Promise<Array<{ address: string; family: number }>>;

/** Options of `SystemResolver`. */
export interface SystemResolverOptions {
  /** Address lookup. @default dns.promises.lookup */
  lookup?: SystemLookupFunction;
  /** SRV lookup. @default dns.promises.resolveSrv */
  resolveSrv?: (name: string) => Promise<Array<{ name: string; port: number }>>;
}

// getaddrinfo reports both "no such name" and "no address" as ENOTFOUND; c-ares uses both codes.
const NO_ANSWER_CODES = new Set(['ENOTFOUND', 'ENODATA']);

function isNoAnswer(error: unknown): boolean {
  return NO_ANSWER_CODES.has((error as NodeJS.ErrnoException | undefined)?.code ?? '');
}

function toSrvAnswers(records: Array<{ name: string; port: number }>): SrvAnswer[] {
  return records.map(({ name, port }) => ({ name, port }));
}

/**
 * The operating system's resolver (the default): `getaddrinfo` through `dns.lookup`, so
 * `/etc/hosts`, `nsswitch.conf` and the pod's search domains apply, as for any other program.
 * SRV lookups use `dns.resolveSrv`, which queries the name as given (no search domains): give
 * SRV names fully qualified (`_memcache._tcp.mycache.default.svc.cluster.local`).
 */
export class SystemResolver implements Resolver {
  private readonly lookup: SystemLookupFunction;
  private readonly srv: (name: string) => Promise<Array<{ name: string; port: number }>>;
  private readonly pending = new Map<string, Promise<string[]>>();

  constructor(options: SystemResolverOptions = {}) {
    this.lookup = options.lookup ?? ((name, opts) => dns.lookup(name, opts));
    this.srv = options.resolveSrv ?? ((name) => dns.resolveSrv(name));
  }

  lookupHost(name: string): Promise<string[]> {
    if (isIP(name)) return Promise.resolve([name]);
    // getaddrinfo blocks a libuv pool thread until the system gives up (resolv.conf timeouts) and
    // cannot be cancelled: while one is pending for a name, later callers share it, so a hung
    // DNS server can never fill the thread pool that fs and crypto also need.
    let pending = this.pending.get(name);
    if (!pending) {
      pending = this.lookupOnce(name).finally(() => this.pending.delete(name));
      this.pending.set(name, pending);
    }
    return pending;
  }

  async resolveSrv(name: string): Promise<SrvAnswer[]> {
    try {
      return toSrvAnswers(await this.srv(name));
    } catch (error) {
      if (isNoAnswer(error)) return [];
      throw DnsLookupError.from(name, error);
    }
  }

  private async lookupOnce(name: string): Promise<string[]> {
    try {
      const answers = await this.lookup(name, { all: true });
      return answers.map((a) => a.address);
    } catch (error) {
      if (isNoAnswer(error)) return [];
      throw DnsLookupError.from(name, error);
    }
  }
}

/**
 * Queries the given DNS servers directly (`dnsServers` option), bypassing `/etc/hosts` and
 * search domains. Each query is sent once and given up after `timeoutMs`.
 */
export class DnsServersResolver implements Resolver {
  private readonly resolver: dns.Resolver;

  /**
   * @param servers `host`, `host:port` or `[ipv6]:port`, as `dns.setServers` takes them.
   * @param timeoutMs Give up on one query after this many ms.
   */
  constructor(
    readonly servers: readonly string[],
    timeoutMs: number,
  ) {
    if (servers.length === 0) {
      throw new K8sOptionsError(
        'Invalid cache dnsServers: the list is empty; give at least one "host[:port]"',
      );
    }
    this.resolver = new dns.Resolver({ timeout: timeoutMs, tries: 1 });
    try {
      this.resolver.setServers([...servers]);
    } catch (error) {
      throw new K8sOptionsError(
        `Invalid cache dnsServers ${JSON.stringify(servers)}: ` +
          `expected IP addresses with optional ports ("10.0.0.10", "127.0.0.1:5353", "[::1]:53")`,
        { cause: error },
      );
    }
  }

  async lookupHost(name: string): Promise<string[]> {
    if (isIP(name)) return [name];
    const results = await Promise.allSettled([
      this.resolver.resolve4(name),
      this.resolver.resolve6(name),
    ]);
    const addresses: string[] = [];
    for (const result of results) {
      if (result.status === 'fulfilled') addresses.push(...result.value);
      // Half an answer (A but a timed-out AAAA) must not shrink the list: fail the whole lookup.
      else if (!isNoAnswer(result.reason)) throw DnsLookupError.from(name, result.reason);
    }
    return addresses;
  }

  async resolveSrv(name: string): Promise<SrvAnswer[]> {
    try {
      return toSrvAnswers(await this.resolver.resolveSrv(name));
    } catch (error) {
      if (isNoAnswer(error)) return [];
      throw DnsLookupError.from(name, error);
    }
  }

  cancel(): void {
    this.resolver.cancel();
  }
}

/** The resolver `dnsServers` selects: those servers, or the system's (`/etc/hosts`, search domains). */
export function createResolver(
  dnsServers: readonly string[] | undefined,
  timeoutMs: number,
): Resolver {
  return dnsServers?.length ? new DnsServersResolver(dnsServers, timeoutMs) : new SystemResolver();
}
