import { createConnection } from 'node:net';
import Keyv from 'keyv';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { MemcachedError } from '../../lib/errors/memcached.errors.js';
import { MemcachedTlsError } from '../../lib/errors/memcached.errors.js';
import { MemcachedStore } from '../../lib/memcached/store/memcached.store.js';
import type { MemcachedStoreOptions } from '../../lib/memcached/store/memcached.store.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { memcachedAvailable, startMemcached, stopAllMemcached } from '../support/memcached.js';
import { findBinary, serviceAvailable } from '../support/services.js';
import { quietLogger } from '../support/quiet-logger.js';
import { makeTestCertificates } from '../support/test-certificates.js';
import type { TestCertificates } from '../support/test-certificates.js';

// This file's loopback range: 127.0.10.x.
const run =
  memcachedAvailable() &&
  serviceAvailable('openssl', findBinary('openssl') !== undefined, 'apt-get install openssl');
const TLS_HOSTS = ['127.0.10.1', '127.0.10.2', '127.0.10.3'];
const PLAIN_HOST = '127.0.10.4';
const SERVICE_NAME = 'mycache-memcached';

/** What a plaintext client gets back for `text` before the server closes (at most 2 s). */
function plaintextReply(server: MemcachedProcess, text: string): Promise<string> {
  return new Promise((resolve) => {
    let reply = '';
    const socket = createConnection({ host: server.host, port: server.port });
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reply);
    };
    const timer = setTimeout(done, 2_000);
    socket.on('connect', () => socket.write(text));
    socket.on('data', (chunk: Buffer) => (reply += chunk.toString('latin1')));
    socket.on('close', done);
    socket.on('error', done);
  });
}

describe.runIf(run)('TLS to memcached', () => {
  let certs: TestCertificates;
  let members: MemcachedProcess[];
  let plain: MemcachedProcess;
  const cleanups: Array<() => Promise<void>> = [];

  function newStore(options: Partial<MemcachedStoreOptions>, servers = members) {
    const lines: string[] = [];
    const store = new MemcachedStore({
      host: servers.map((s) => s.id).join(','),
      refreshInterval: 0,
      commandTimeout: 1000,
      connectTimeout: 1000,
      failureLimit: 2,
      retryTimeout: 60_000,
      logger: { ...quietLogger, error: (line: string) => void lines.push(line) },
      ...options,
    });
    const errors: MemcachedError[] = [];
    store.on('error', (error: MemcachedError) => errors.push(error));
    cleanups.push(() => store.disconnect());
    return { store, errors, lines };
  }

  beforeAll(() => {
    // IP SANs of the TLS members plus the Service name.
    certs = makeTestCertificates({ dnsNames: [SERVICE_NAME], ips: TLS_HOSTS });
  });

  // Fresh members for each test: one test stops and restarts a member, another counts items.
  beforeEach(async () => {
    const args = ['-Z', '-o', `ssl_chain_cert=${certs.certFile},ssl_key=${certs.keyFile}`];
    members = await Promise.all(
      TLS_HOSTS.map((host) => startMemcached({ host, args, tls: { ca: certs.ca } })),
    );
    plain = await startMemcached({ host: PLAIN_HOST });
  });

  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
    await stopAllMemcached();
  });

  afterAll(() => {
    certs?.remove();
  });

  it('reaches every member over TLS with the CA the test made', async () => {
    // The members speak TLS only: a plaintext client gets no answer.
    expect(await plaintextReply(members[0], 'version\r\n')).not.toContain('VERSION');
    const { store, errors } = newStore({ tls: { ca: certs.ca } });
    const keyv = new Keyv({ store, namespace: 'tls' });
    const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
    expect(await keyv.setMany(keys.map((key) => ({ key, value: `v-${key}` })))).toEqual(
      keys.map(() => true),
    );
    expect(await keyv.get(keys)).toEqual(keys.map((key) => `v-${key}`));
    expect(errors).toEqual([]);
    // Each member holds its share, read back over its own TLS connection.
    const items = await Promise.all(members.map(async (m) => Number((await m.stats()).curr_items)));
    expect(items.every((n) => n > 30)).toBe(true);
    expect(items.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(keys.length);
    expect(store.stats().ring).toEqual(members.map((m) => m.id).sort());
  });

  it('probes an ejected member over TLS and re-admits it once it is back', async () => {
    const { store } = newStore({ tls: { ca: certs.ca }, retryTimeout: 300 });
    const keyv = new Keyv({ store, namespace: 'tls-probe' });
    const victim = members[2];
    const keys = Array.from({ length: 60 }, (_, i) => `p${i}`);
    expect((await keyv.setMany(keys.map((key) => ({ key, value: key })))).every(Boolean)).toBe(
      true,
    );
    const ejected = new Promise((resolve) => store.once('eject', resolve));
    await victim.stop();
    for (let i = 0; i < 20 && store.stats().ring.includes(victim.id); i++) await keyv.get(keys[i]);
    expect(await ejected).toBe(victim.id);
    const readmitted = new Promise((resolve) => store.once('readmit', resolve));
    await victim.restart();
    // The probe is a `stats` on a fresh connection: only a TLS one gets an answer.
    expect(await readmitted).toBe(victim.id);
    expect(store.stats().ring).toContain(victim.id);
    expect((await keyv.setMany(keys.map((key) => ({ key, value: key })))).every(Boolean)).toBe(
      true,
    );
    expect(Number((await victim.stats()).curr_items)).toBeGreaterThan(5);
  });

  it('checks the certificate against servername when one is given', async () => {
    const good = newStore({ tls: { ca: certs.ca, servername: SERVICE_NAME } });
    expect(await good.store.set('keyv:sni', 'ok')).toBe(true);
    expect(await good.store.get('keyv:sni')).toBe('ok');
    expect(good.errors).toEqual([]);

    const bad = newStore({ tls: { ca: certs.ca, servername: 'other.example' } }, [members[0]]);
    expect(await bad.store.set('keyv:sni', 'no')).toBe(false);
    expect(bad.errors[0]).toBeInstanceOf(MemcachedTlsError);
    expect(bad.errors[0].message).toMatch(/TLS handshake.*altnames/);
  });

  it('fails with a clear TLS error on a wrong CA, ejects the member and never falls back to plaintext', async () => {
    const before = await Promise.all(members.map((m) => m.stats()));
    const { store, errors, lines } = newStore({ tls: { ca: certs.otherCa } });
    const keyv = new Keyv({ store, namespace: 'wrong-ca' });
    let rejected = 0;
    for (let i = 0; i < 20; i++) {
      await keyv.set(`k${i}`, i).catch(() => rejected++);
      expect(await keyv.get(`k${i}`).catch(() => rejected++)).toBeUndefined();
    }
    expect(rejected).toBe(0);
    const tlsErrors = errors.filter((e) => e instanceof MemcachedTlsError);
    expect(tlsErrors.length).toBeGreaterThan(0);
    expect(tlsErrors[0].message).toMatch(/TLS handshake/);
    expect(tlsErrors[0].message).toMatch(/certificate/);
    expect(tlsErrors[0].message).toMatch(/cache\.tls/);
    // Every member failed its handshake and left the ring.
    expect(new Set(tlsErrors.map((e) => (e as MemcachedTlsError).member))).toEqual(
      new Set(members.map((m) => m.id)),
    );
    expect(store.stats().ring).toEqual([]);
    // Logged at a bounded rate: at most one line per member (plus the all-ejected line).
    expect(lines.filter((l) => l.includes('TLS handshake')).length).toBeGreaterThan(0);
    expect(lines.filter((l) => l.includes('TLS handshake')).length).toBeLessThanOrEqual(3);
    // Nothing reached the members: not one command, in plaintext or otherwise.
    const after = await Promise.all(members.map((m) => m.stats()));
    for (const [i, stats] of after.entries()) {
      expect(stats.cmd_set).toBe(before[i].cmd_set);
      expect(stats.cmd_get).toBe(before[i].cmd_get);
    }
  });

  it('refuses a member that does not speak TLS instead of talking plaintext to it', async () => {
    const before = await plain.stats();
    const { store, errors } = newStore({ tls: { ca: certs.ca } }, [plain]);
    expect(await store.set('keyv:secret', 'never in clear')).toBe(false);
    expect(await store.get('keyv:secret')).toBeUndefined();
    expect(errors[0]).toBeInstanceOf(MemcachedTlsError);
    const after = await plain.stats();
    expect(after.cmd_set).toBe(before.cmd_set);
    expect(after.cmd_get).toBe(before.cmd_get);
    expect(after.curr_items).toBe('0');
  });
});
