import type { LoggerService } from '@nestjs/common';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ElastiCacheDiscovery } from '../../lib/discovery/elasticache-discovery.js';
import type { ElastiCacheDiscoveryOptions } from '../../lib/discovery/elasticache-discovery.js';
import { memberId } from '../../lib/discovery/member.js';
import type { Member, MemberDiff } from '../../lib/discovery/member.js';
import { startDnsServer } from '../support/dns-server.js';
import type { TestDnsServer } from '../support/dns-server.js';
import { startConfigEndpoint } from '../support/elasticache-endpoint.js';
import type { ConfigNode, TestConfigEndpoint } from '../support/elasticache-endpoint.js';
import { makeTestCertificates } from '../support/test-certificates.js';
import { findBinary, serviceAvailable } from '../support/services.js';
import { sleep } from '../support/wait-for.js';
import { scaled } from '../support/timing.js';

// This file's loopback range: 127.0.24.x. The source never connects to the nodes it lists, so
// they need not run here (test/e2e/elasticache.e2e-spec.ts puts real memcached behind them).

const ids = (members: readonly Member[]) => members.map(memberId);
const node = (i: number, ip = `10.0.0.${i}`): ConfigNode => ({
  host: `mycluster.abc123.000${i}.use1.cache.amazonaws.com`,
  ip,
  port: 11211,
});
const nodeIds = (...n: number[]) => n.map((i) => `${node(i).host}:11211`);

/** Log lines by level, for assertions on what the source tells operators. */
class RecordingLogger implements LoggerService {
  readonly lines: Array<[string, string]> = [];
  log = (m: string) => void this.lines.push(['log', m]);
  warn = (m: string) => void this.lines.push(['warn', m]);
  error = (m: string) => void this.lines.push(['error', m]);
  debug = (m: string) => void this.lines.push(['debug', m]);
  at = (level: string) => this.lines.filter(([l]) => l === level).map(([, m]) => m);
}

describe('ElastiCacheDiscovery against a configuration endpoint', () => {
  let dns: TestDnsServer;
  const endpoints: TestConfigEndpoint[] = [];
  const sources: ElastiCacheDiscovery[] = [];
  let nameCounter = 0;
  let hostCounter = 0;

  /** An endpoint of its own on the next loopback address, listing nodes 1–3 as version 1. */
  async function endpoint(tls?: { key: Buffer; cert: Buffer }): Promise<TestConfigEndpoint> {
    const e = await startConfigEndpoint({ host: `127.0.24.${++hostCounter}`, tls });
    e.setNodes([node(1), node(2), node(3)]);
    endpoints.push(e);
    return e;
  }

  /** A DNS name of its own pointing at `e`. */
  function nameFor(e: TestConfigEndpoint): string {
    const name = `mycluster-${++nameCounter}.abc123.cfg.use1.cache.amazonaws.com`;
    dns.setA(name, [e.host]);
    return name;
  }

  function discover(options: Partial<ElastiCacheDiscoveryOptions> & { host: string }) {
    const source = new ElastiCacheDiscovery({
      dnsServers: [dns.address],
      refreshInterval: 0,
      lookupTimeout: 1_000,
      logger: new RecordingLogger(),
      ...options,
    });
    sources.push(source);
    return source;
  }

  beforeAll(async () => {
    dns = await startDnsServer();
  });

  afterEach(async () => {
    for (const s of sources.splice(0)) s.stop();
    await Promise.all(endpoints.splice(0).map((e) => e.close()));
  });

  afterAll(async () => {
    await dns?.close();
  });

  it('lists the nodes by host name, reached at their IP; port default 11211', async () => {
    const e = await endpoint();
    const name = nameFor(e);
    const source = discover({ host: name, port: e.port });
    const members = await source.start();
    expect(ids(members)).toEqual(nodeIds(1, 2, 3));
    expect(members[0]).toEqual({ host: node(1).host, address: '10.0.0.1', port: 11211 });
    expect(source.stats()).toMatchObject({ healthy: true, configVersion: 1, failures: 0 });
    expect(e.requests('config')).toBe(1);
  });

  it('follows version bumps: a node added, a node removed; listeners get the diff', async () => {
    const e = await endpoint();
    const source = discover({ host: e.address });
    await source.start();
    const diffs: MemberDiff[] = [];
    source.onChange((_, diff) => diffs.push(diff));

    e.setNodes([node(1), node(2), node(3), node(4)]);
    await source.refresh();
    expect(ids(source.members())).toEqual(nodeIds(1, 2, 3, 4));
    e.setNodes([node(1), node(3), node(4)]);
    await source.refresh();
    expect(ids(source.members())).toEqual(nodeIds(1, 3, 4));
    expect(diffs.map((d) => [ids(d.added), ids(d.removed)])).toEqual([
      [nodeIds(4), []],
      [[], nodeIds(2)],
    ]);
    expect(source.stats().configVersion).toBe(3);
  });

  it('applies a list only when the version changed; a version that goes back is ignored and counted', async () => {
    const e = await endpoint();
    const logger = new RecordingLogger();
    const source = discover({ host: e.address, logger });
    await source.start();

    // Same version, other nodes: not applied (the version says nothing changed).
    e.setNodes([node(1)], 1);
    await source.refresh();
    expect(ids(source.members())).toEqual(nodeIds(1, 2, 3));

    e.setNodes([node(1), node(2), node(3), node(4)], 5);
    await source.refresh();
    expect(ids(source.members())).toEqual(nodeIds(1, 2, 3, 4));

    // Version 4 < 5: a node behind the endpoint that has not caught up.
    e.setNodes([node(1), node(2)], 4);
    await source.refresh();
    await source.refresh();
    expect(ids(source.members())).toEqual(nodeIds(1, 2, 3, 4));
    expect(source.stats()).toMatchObject({ configVersion: 5, staleConfigs: 2, healthy: true });
    expect(logger.at('warn')).toEqual([
      expect.stringMatching(/answered version 4, older than the 5 in use: ignored/),
    ]);

    e.setNodes([node(1), node(2)], 6);
    await source.refresh();
    expect(ids(source.members())).toEqual(nodeIds(1, 2));
  });

  it('tells an IP change of the same host name as a changed member, not a new one', async () => {
    const e = await endpoint();
    const source = discover({ host: e.address });
    await source.start();
    const diffs: MemberDiff[] = [];
    source.onChange((_, diff) => diffs.push(diff));

    e.setNodes([node(1), node(2, '10.0.9.2'), node(3)]);
    await source.refresh();
    expect(ids(source.members())).toEqual(nodeIds(1, 2, 3));
    expect(source.members()[1]).toEqual({ host: node(2).host, address: '10.0.9.2', port: 11211 });
    expect(diffs).toEqual([
      {
        added: [],
        removed: [],
        changed: [{ host: node(2).host, address: '10.0.9.2', port: 11211 }],
      },
    ]);
  });

  it('connects by host name when the configuration gives no IP (host||port)', async () => {
    const e = await endpoint();
    e.setNodes([{ host: 'node-a.example', port: 11212 }]);
    const source = discover({ host: e.address });
    expect(await source.start()).toEqual([{ host: 'node-a.example', port: 11212 }]);
  });

  it('falls back to get AmazonElastiCache:cluster when config get cluster answers ERROR, and remembers it', async () => {
    const e = await endpoint();
    e.legacyEngine(true);
    const source = discover({ host: e.address });
    expect(ids(await source.start())).toEqual(nodeIds(1, 2, 3));
    await source.refresh();
    expect(source.stats().healthy).toBe(true);
    // The first poll tried config, then get; the second went straight to get.
    expect([e.requests('config'), e.requests('get')]).toEqual([1, 2]);
  });

  it('refuses a plain memcached with a message naming the fix', async () => {
    const e = await endpoint();
    e.behave({ kind: 'raw', bytes: 'ERROR\r\n' });
    const source = discover({ host: e.address });
    expect(await source.start()).toEqual([]);
    expect(source.stats().lastError).toMatch(/answered ERROR to both .* use discovery: 'dns'/);
  });

  it('resolves the endpoint name again on every poll and follows it to another node', async () => {
    // Two nodes of one cluster: same port, other addresses; the second knows a newer version.
    const first = await endpoint();
    const second = await startConfigEndpoint({ host: '127.0.24.200', port: first.port });
    endpoints.push(second);
    second.setNodes([node(1), node(2), node(3), node(4)], 2);
    const name = nameFor(first);
    const source = discover({ host: `${name}:${first.port}` });
    await source.start();
    const queries = dns.queryCount(name, 'A');
    await source.refresh();
    expect(dns.queryCount(name, 'A')).toBe(queries + 1);

    // The node behind the name goes away: while DNS still names it, the list stays...
    await first.down();
    await source.refresh();
    expect(source.stats()).toMatchObject({ healthy: false, configVersion: 1 });
    expect(ids(source.members())).toEqual(nodeIds(1, 2, 3));
    // ...and once DNS names another node, that node's configuration is followed.
    dns.setA(name, [second.host]);
    await source.refresh();
    expect(source.stats()).toMatchObject({ healthy: true, configVersion: 2 });
    expect(ids(source.members())).toEqual(nodeIds(1, 2, 3, 4));
  });

  describe('never replaces the last good list', () => {
    const troubles: Array<[string, (e: TestConfigEndpoint) => Promise<void> | void, RegExp]> = [
      ['down', (e) => e.down(), /connection failed \(ECONNREFUSED\)/],
      ['silent', (e) => e.behave({ kind: 'silent' }), /no complete answer .* within 1000 ms/],
      [
        'truncated',
        (e) => e.behave({ kind: 'truncated', bytes: 40 }),
        /closed the connection after 40 bytes/,
      ],
      [
        'garbage',
        (e) => e.behave({ kind: 'raw', bytes: 'HTTP/1.1 400 Bad Request\r\n\r\n' }),
        /unexpected first line "HTTP\/1\.1 400 Bad Request"/,
      ],
      [
        'a malformed node',
        (e) => e.behave({ kind: 'raw', bytes: framed('9\nhost|10.0.0.300|11211\n') }),
        /malformed configuration .*invalid IP address/,
      ],
      ['an empty list', (e) => e.setNodes([]), /lists no nodes \(version 2\)/],
      [
        'an endless reply',
        (e) =>
          e.behave({ kind: 'raw', bytes: `CONFIG cluster 0 999999\r\n${'x'.repeat(300_000)}` }),
        /more than 262144 bytes/,
      ],
    ];

    it.each(troubles)('when the endpoint is %s', async (_, trouble, reason) => {
      const e = await endpoint();
      const logger = new RecordingLogger();
      const source = discover({ host: e.address, logger });
      await source.start();
      const changes: MemberDiff[] = [];
      source.onChange((_, diff) => changes.push(diff));

      await trouble(e);
      await source.refresh();
      expect(ids(source.members())).toEqual(nodeIds(1, 2, 3));
      expect(changes).toEqual([]);
      expect(source.stats()).toMatchObject({ healthy: false, failures: 1, configVersion: 1 });
      expect(source.stats().lastError).toMatch(reason);
      expect(logger.at('warn')).toEqual([
        expect.stringMatching(
          /ElastiCache configuration query for cache members failed: .*keeping the 3 current members/,
        ),
      ]);

      // Recovery: the endpoint answers properly again with a newer version, and it is applied.
      await e.up();
      e.behave({ kind: 'answer' });
      e.setNodes([node(1), node(2), node(3), node(4)], 7);
      await source.refresh();
      expect(ids(source.members())).toEqual(nodeIds(1, 2, 3, 4));
      expect(source.stats().healthy).toBe(true);
    });
  });

  it('gives up on a name that answers NXDOMAIN, keeping the list', async () => {
    const e = await endpoint();
    const name = nameFor(e);
    const source = discover({ host: `${name}:${e.port}` });
    await source.start();
    dns.setNxdomain(name);
    await source.refresh();
    expect(ids(source.members())).toEqual(nodeIds(1, 2, 3));
    expect(source.stats().lastError).toMatch(/answered no addresses/);
  });

  it('stop() ends a query hung on a silent endpoint at once', async () => {
    const e = await endpoint();
    e.behave({ kind: 'silent' });
    const source = discover({ host: e.address, lookupTimeout: 20_000 });
    const started = source.start();
    await waitUntil(() => e.requests('config') === 1, 5_000);
    const before = Date.now();
    source.stop();
    expect(await started).toEqual([]);
    // The 20 s deadline did not have to pass: stop() destroyed the socket.
    expect(Date.now() - before).toBeLessThan(scaled(5_000));
  });
});

const tlsRun = serviceAvailable(
  'openssl',
  findBinary('openssl') !== undefined,
  'apt-get install openssl',
);

describe.runIf(tlsRun)('ElastiCacheDiscovery over TLS', () => {
  let dns: TestDnsServer;
  let certificates: ReturnType<typeof makeTestCertificates>;
  let e: TestConfigEndpoint;
  const NAME = 'mycluster.abc123.cfg.use1.cache.amazonaws.com';

  beforeAll(async () => {
    dns = await startDnsServer();
    certificates = makeTestCertificates({ dnsNames: [NAME] });
    e = await startConfigEndpoint({
      host: '127.0.24.250',
      tls: { key: certificates.key, cert: certificates.cert },
    });
    e.setNodes([node(1), node(2)]);
    dns.setA(NAME, [e.host]);
  });

  afterAll(async () => {
    await e?.close();
    await dns?.close();
    certificates?.remove();
  });

  it('asks the endpoint over TLS, checking its certificate against the endpoint name', async () => {
    const source = new ElastiCacheDiscovery({
      host: `${NAME}:${e.port}`,
      dnsServers: [dns.address],
      refreshInterval: 0,
      tls: { ca: certificates.ca, rejectUnauthorized: true },
      logger: new RecordingLogger(),
    });
    try {
      expect(ids(await source.start())).toEqual(nodeIds(1, 2));
      expect(source.stats().healthy).toBe(true);
    } finally {
      source.stop();
    }
  });

  it('refuses an endpoint whose certificate another CA signed, and never falls back to plaintext', async () => {
    const source = new ElastiCacheDiscovery({
      host: `${NAME}:${e.port}`,
      dnsServers: [dns.address],
      refreshInterval: 0,
      tls: { ca: certificates.otherCa, rejectUnauthorized: true },
      logger: new RecordingLogger(),
    });
    const requestsBefore = e.requests();
    try {
      expect(await source.start()).toEqual([]);
      expect(source.stats().lastError).toMatch(/TLS connection failed/);
      // The handshake failed before any request was sent.
      expect(e.requests()).toBe(requestsBefore);
    } finally {
      source.stop();
    }
  });
});

/** A configuration reply around `data`, framed as documented (correct byte count). */
function framed(data: string): string {
  return `CONFIG cluster 0 ${Buffer.byteLength(data)}\r\n${data}\r\nEND\r\n`;
}

async function waitUntil(check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await sleep(10);
  }
}
