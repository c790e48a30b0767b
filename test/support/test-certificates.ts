import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A CA, a server certificate it signed, and an unrelated CA (PEM contents). */
export interface TestCertificates {
  readonly ca: Buffer;
  /** A CA that signed nothing here: trusting only it must fail the handshake. */
  readonly otherCa: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
  /** Paths of the server certificate and key (for `memcached -Z -o ssl_chain_cert=…,ssl_key=…`). */
  readonly certFile: string;
  readonly keyFile: string;
  /** Delete the files. */
  remove(): void;
}

/**
 * Make throw-away certificates with openssl (2-day validity, RSA 2048): the server certificate
 * holds `dnsNames` and `ips` as subject alternative names.
 */
export function makeTestCertificates(sans: {
  dnsNames?: readonly string[];
  ips?: readonly string[];
}): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'nestjs-k8s-certs-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const keyAndRequest = (name: string, cn: string) => [
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-subj',
    `/CN=${cn}`,
  ];
  openssl(
    'req',
    '-x509',
    ...keyAndRequest('ca', 'nestjs-k8s test CA'),
    '-out',
    'ca.crt',
    '-days',
    '2',
  );
  openssl(
    'req',
    '-x509',
    ...keyAndRequest('other', 'some other CA'),
    '-out',
    'other.crt',
    '-days',
    '2',
  );
  const names = [
    ...(sans.dnsNames ?? []).map((n) => `DNS:${n}`),
    ...(sans.ips ?? []).map((ip) => `IP:${ip}`),
  ];
  openssl(
    'req',
    ...keyAndRequest('server', sans.dnsNames?.[0] ?? 'test server'),
    '-out',
    'server.csr',
  );
  writeFileSync(join(dir, 'san.cnf'), `subjectAltName=${names.join(',')}\n`);
  openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.crt',
    '-days',
    '2',
    '-extfile',
    'san.cnf',
  );
  const read = (file: string) => readFileSync(join(dir, file));
  return {
    ca: read('ca.crt'),
    otherCa: read('other.crt'),
    cert: read('server.crt'),
    key: read('server.key'),
    certFile: join(dir, 'server.crt'),
    keyFile: join(dir, 'server.key'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
