import { isIPv4, isIPv6 } from 'node:net';
import { K8sOptionsError } from '../errors/k8s.error.js';

/** An SRV name (`_memcache._tcp.mycache`): every answer names a target host and its own port. */
export interface SrvTarget {
  readonly kind: 'srv';
  readonly name: string;
}

/** An IP literal: a member as it is, no DNS involved. IPv6 in canonical form, no brackets. */
export interface IpTarget {
  readonly kind: 'ip';
  readonly host: string;
  readonly port: number;
}

/** A DNS name whose A and AAAA answers are the members, all on `port`. */
export interface NameTarget {
  readonly kind: 'name';
  readonly name: string;
  readonly port: number;
}

/** One item of a `host` option. */
export type HostTarget = SrvTarget | IpTarget | NameTarget;

const EXPECTED =
  'expected a DNS name, name:port, an IP address (IPv6 with a port in brackets: [fd00::1]:11211), ' +
  'an SRV name (_memcache._tcp.mycache) or a comma-separated list of those';
const MAX_NAME_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;
// Letters, digits, hyphens inside; underscores too (SRV labels, some internal zones).
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/i;

/**
 * Parse a `host` option (see `K8sCacheOptions.host`) into the targets to resolve.
 * Throws `K8sOptionsError` naming the bad item and what is expected.
 */
export function parseHostSpec(host: string, defaultPort: number): HostTarget[] {
  if (!isPort(defaultPort)) {
    throw new K8sOptionsError(
      `Invalid cache port ${String(defaultPort)}: expected an integer from 1 to 65535`,
    );
  }
  if (typeof host !== 'string' || host.trim() === '') {
    throw new K8sOptionsError(`Invalid cache host: it is empty; ${EXPECTED}`);
  }
  // "user:password@host" (or a memcached:// URL) is never a host: refused without echoing it,
  // since the part before "@" is likely a password.
  const withCredentials = host.split(',').findIndex((item) => item.includes('@'));
  if (withCredentials !== -1) {
    throw new K8sOptionsError(
      `Invalid cache host: item ${withCredentials + 1} contains "@" (credentials?); memcached is ` +
        `reached without a user or password, so give only the host; ${EXPECTED}`,
    );
  }
  return host.split(',').map((raw, index) => {
    const item = raw.trim();
    if (item === '') {
      throw new K8sOptionsError(
        `Invalid cache host "${host}": item ${index + 1} is empty (a stray comma?); ${EXPECTED}`,
      );
    }
    return parseItem(item, defaultPort);
  });
}

/**
 * The one endpoint a `host` option names where discovery takes a single endpoint
 * (`discovery: 'elasticache' | 'memorystore' | 'endpoint'`): `name[:port]` or `ip[:port]`, no list,
 * no SRV name. Throws `K8sOptionsError` saying what to give: `what` (e.g. "the cluster's
 * configuration endpoint") and an `example`.
 */
export function parseSingleEndpoint(
  host: string,
  port: number,
  discovery: string,
  what: string,
  example: string,
): NameTarget | IpTarget {
  const targets = parseHostSpec(host, port);
  const [target] = targets;
  if (targets.length !== 1 || target.kind === 'srv') {
    throw new K8sOptionsError(
      `Invalid cache host "${host}" with discovery '${discovery}': give ${what} alone, as ` +
        `name[:port] or ip[:port] (e.g. ${example})`,
    );
  }
  return target;
}

function parseItem(item: string, defaultPort: number): HostTarget {
  const fail = (what: string): never => {
    throw new K8sOptionsError(`Invalid cache host "${item}": ${what}`);
  };
  if (/\s/.test(item)) fail(`it contains whitespace; ${EXPECTED}`);

  if (item.startsWith('[')) {
    const match = /^\[([^\]]*)\](?::(.*))?$/.exec(item);
    if (!match) fail(`a bracketed IPv6 address must look like [fd00::1] or [fd00::1]:11211`);
    const [, address, port] = match!;
    if (!isIPv6(address)) fail(`"${address}" is not an IPv6 address`);
    return { kind: 'ip', host: canonicalIPv6(address), port: parsePort(port, defaultPort, fail) };
  }
  // Two or more colons: only a bare IPv6 literal can be meant (a port needs brackets).
  if (item.indexOf(':') !== item.lastIndexOf(':')) {
    if (isIPv6(item)) return { kind: 'ip', host: canonicalIPv6(item), port: defaultPort };
    fail(`it is not a valid IPv6 address (to give a port with IPv6, write [address]:port)`);
  }

  const colon = item.indexOf(':');
  const name = colon === -1 ? item : item.slice(0, colon);
  const port = colon === -1 ? undefined : item.slice(colon + 1);
  if (name === '') fail(`the host name before ":" is missing; ${EXPECTED}`);

  if (isIPv4(name)) return { kind: 'ip', host: name, port: parsePort(port, defaultPort, fail) };
  if (/^[\d.]+$/.test(name)) fail(`"${name}" is not a valid IPv4 address`);

  const dnsName = validateName(name, fail);
  if (dnsName.startsWith('_')) {
    if (port !== undefined) {
      fail(`an SRV name cannot carry a port (each SRV answer brings its own): remove ":${port}"`);
    }
    return { kind: 'srv', name: dnsName };
  }
  return { kind: 'name', name: dnsName, port: parsePort(port, defaultPort, fail) };
}

function validateName(name: string, fail: (what: string) => never): string {
  // A trailing dot marks a fully qualified name: keep it, resolvers then skip search domains.
  const bare = name.endsWith('.') ? name.slice(0, -1) : name;
  if (bare.length > MAX_NAME_LENGTH) {
    fail(`the name is ${bare.length} characters long; DNS allows at most ${MAX_NAME_LENGTH}`);
  }
  for (const label of bare.split('.')) {
    if (label === '') fail(`the name has an empty label (two dots in a row, or a leading dot)`);
    if (label.length > MAX_LABEL_LENGTH) {
      fail(`the label "${label}" is ${label.length} characters long; DNS allows at most 63`);
    }
    if (!LABEL.test(label)) {
      fail(
        `the label "${label}" has characters a DNS name cannot have: ` +
          'use letters, digits, "-" and "_" only, not "-" at either end',
      );
    }
  }
  return name.toLowerCase();
}

function parsePort(
  port: string | undefined,
  defaultPort: number,
  fail: (what: string) => never,
): number {
  if (port === undefined) return defaultPort;
  const value = /^\d{1,5}$/.test(port) ? Number(port) : NaN;
  if (!isPort(value)) fail(`the port "${port}" must be an integer from 1 to 65535`);
  return value;
}

function isPort(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65535;
}

/** `FD00:0::1` and `fd00::1` are one member: compare IPv6 literals in their canonical form. */
function canonicalIPv6(address: string): string {
  // Zone ids (fe80::1%eth0) are not valid in URLs; keep them as given.
  if (address.includes('%')) return address.toLowerCase();
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}
