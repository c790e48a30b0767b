import { K8sError } from './k8s.error.js';

/**
 * A DNS lookup could not be answered: the server is unreachable, refused, failed (SERVFAIL) or
 * did not answer in time. Not used for NXDOMAIN / "no records": resolvers answer those with an
 * empty list, because they are answers, not failures of the lookup itself.
 */
export class DnsLookupError extends K8sError {
  constructor(
    /** The name that was looked up. */
    readonly hostname: string,
    /** The resolver's error code (`ETIMEOUT`, `ECONNREFUSED`, `ESERVFAIL`, `EAI_AGAIN`, …). */
    readonly code: string | undefined,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  /** Wrap an error of `node:dns` (which carries `code`) for `hostname`. */
  static from(hostname: string, error: unknown): DnsLookupError {
    if (error instanceof DnsLookupError) return error;
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    const detail = code ?? (error instanceof Error ? error.message : String(error));
    return new DnsLookupError(
      hostname,
      code,
      `DNS lookup of "${hostname}" failed (${detail}): check that the DNS server is reachable`,
      { cause: error },
    );
  }
}

/** A DNS lookup took longer than `lookupTimeout`; the member list stays as it was. */
export class DnsLookupTimeoutError extends DnsLookupError {
  constructor(hostname: string, timeoutMs: number) {
    super(
      hostname,
      'ETIMEOUT',
      `DNS lookup of "${hostname}" got no answer within ${timeoutMs} ms (lookupTimeout): ` +
        'check that the DNS server is reachable, or raise lookupTimeout',
    );
  }
}

/**
 * A configuration endpoint (an ElastiCache cluster's, or a Memorystore instance's discovery
 * endpoint) could not be asked for the cluster's nodes, or answered something that is not a
 * configuration in the documented format. The member list stays.
 */
export class ConfigEndpointError extends K8sError {
  constructor(
    /** What the endpoint is, as messages name it: 'ElastiCache configuration endpoint'. */
    readonly service: string,
    /** The endpoint asked, `host:port` (the address connected to, if resolved). */
    readonly endpoint: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${service} ${endpoint}: ${message}`, options);
  }
}
