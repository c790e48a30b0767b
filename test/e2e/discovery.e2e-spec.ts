import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DnsLookupError } from '../../lib/errors/discovery.errors.js';
import { MemberDiscovery } from '../../lib/discovery/member-discovery.js';
import type { MemberDiscoveryOptions } from '../../lib/discovery/member-discovery.js';
import { memberId } from '../../lib/discovery/member.js';
import type { Member, MemberDiff } from '../../lib/discovery/member.js';
import { DnsServersResolver, SystemResolver } from '../../lib/discovery/resolvers.js';
import type { Resolver, SystemLookupFunction } from '../../lib/discovery/resolvers.js';
import { startDnsServer } from '../support/dns-server.js';
import type { TestDnsServer } from '../support/dns-server.js';
import { quietLogger } from '../support/quiet-logger.js';
import { sleep, waitFor } from '../support/wait-for.js';
import { scaled } from '../support/timing.js';

/** Discovery against a real DNS server (dns2 on 127.0.0.1, a free port) through `dnsServers`. */

const ids = (members: readonly Member[]) => members.map(memberId);

/** Gaps between consecutive times (ms). */
const gaps = (times: readonly number[]) => times.slice(1).map((t, i) => t - times[i]);

/**
 * The real `DnsServersResolver`, recording when each address lookup starts (the client's view of
 * what the rate limit governs) and, while `hold` is set, delivering the real answer only when it
 * is released (a slow lookup whose answer is already old when it lands).
 */
function instrumented(real: DnsServersResolver) {
  const starts: number[] = [];
  let gate: Promise<void> | undefined;
  let openGate: (() => void) | undefined;
  let held = 0;
  const resolver: Resolver = {
    lookupHost: async (name) => {
      starts.push(Date.now());
      const answer = await real.lookupHost(name);
      if (gate) {
        held++;
        await gate;
      }
      return answer;
    },
    resolveSrv: (name) => real.resolveSrv(name),
    cancel: () => real.cancel(),
  };
  return {
    resolver,
    starts,
    held: () => held,
    hold: () => {
      gate = new Promise<void>((resolve) => (openGate = resolve));
    },
    release: () => {
      openGate?.();
      gate = undefined;
    },
  };
}

describe('MemberDiscovery against a real DNS server', () => {
  let dns: TestDnsServer;
  const started: MemberDiscovery[] = [];
  let nameCounter = 0;
  /** A name no other test uses, so tests never see each other's records. */
  const uniqueName = (base = 'mycache') => `${base}-${++nameCounter}.default.svc`;

  const discover = (options: Partial<MemberDiscoveryOptions> & { host: string }) => {
    const d = new MemberDiscovery({
      dnsServers: [dns.address],
      refreshInterval: 0,
      lookupTimeout: 1000,
      logger: quietLogger,
      ...options,
    });
    started.push(d);
    return d;
  };

  beforeAll(async () => {
    dns = await startDnsServer();
  });

  afterEach(() => {
    for (const d of started.splice(0)) d.stop();
    dns.setSilent(false);
  });

  afterAll(async () => {
    await dns?.close();
  });

  it('turns three A records into a sorted member list', async () => {
    const name = uniqueName();
    dns.setA(name, ['127.0.0.13', '127.0.0.11', '127.0.0.12']);
    const d = discover({ host: name });
    expect(ids(await d.start())).toEqual([
      '127.0.0.11:11211',
      '127.0.0.12:11211',
      '127.0.0.13:11211',
    ]);
    expect(d.stats()).toMatchObject({ lookups: 1, failures: 0, healthy: true });
    expect(dns.queryCount(name, 'A')).toBe(1);
  });

  it('picks up changed answers on the periodic refresh and tells listeners the diff', async () => {
    const name = uniqueName();
    dns.setA(name, ['127.0.0.11', '127.0.0.12', '127.0.0.13']);
    const d = discover({ host: name, refreshInterval: 100 });
    await d.start();
    const diffs: MemberDiff[] = [];
    d.onChange((_, diff) => diffs.push(diff));

    dns.setA(name, ['127.0.0.12', '127.0.0.13', '127.0.0.14']);
    const changed = ['127.0.0.12:11211', '127.0.0.13:11211', '127.0.0.14:11211'];
    await waitFor('the changed members', () => ids(d.members()).join() === changed.join(), 5_000);
    expect(diffs).toEqual([
      {
        added: [{ host: '127.0.0.14', port: 11211 }],
        removed: [{ host: '127.0.0.11', port: 11211 }],
      },
    ]);

    // A pod added while nothing else changes: the next refresh brings it, nothing is re-announced.
    dns.setA(name, ['127.0.0.12', '127.0.0.13', '127.0.0.14', '127.0.0.15']);
    await waitFor('the added pod', () => d.members().length === 4, 5_000);
    expect(diffs).toHaveLength(2);
    expect(diffs[1]).toEqual({ added: [{ host: '127.0.0.15', port: 11211 }], removed: [] });
  });

  describe('a lookup that fails or answers nothing keeps the list', () => {
    const twoMembers = ['127.0.0.21:11211', '127.0.0.22:11211'];

    async function working(options: Partial<MemberDiscoveryOptions> = {}) {
      const name = uniqueName();
      dns.setA(name, ['127.0.0.22', '127.0.0.21']);
      const d = discover({ host: name, ...options });
      expect(ids(await d.start())).toEqual(twoMembers);
      const changes: MemberDiff[] = [];
      d.onChange((_, diff) => changes.push(diff));
      return { name, d, changes };
    }

    it('NXDOMAIN', async () => {
      const { name, d, changes } = await working();
      dns.setNxdomain(name);
      await d.refresh();
      expect(ids(d.members())).toEqual(twoMembers);
      expect(changes).toEqual([]);
      expect(d.stats()).toMatchObject({ lookups: 2, failures: 1, healthy: false });
      expect(d.stats().lastError).toMatch(/answered no addresses \(NXDOMAIN or no records\)/);
    });

    it('an empty answer (NOERROR, no records)', async () => {
      const { name, d, changes } = await working();
      dns.setEmpty(name);
      await d.refresh();
      expect(ids(d.members())).toEqual(twoMembers);
      expect(changes).toEqual([]);
      expect(d.stats().lastError).toMatch(/answered no addresses/);
    });

    it('SERVFAIL', async () => {
      const { name, d } = await working();
      dns.setServfail(name);
      await d.refresh();
      expect(ids(d.members())).toEqual(twoMembers);
      expect(d.stats().lastError).toMatch(/ESERVFAIL/);
    });

    it('a silent server: the lookup gives up after lookupTimeout', async () => {
      const { name, d, changes } = await working({ lookupTimeout: 300 });
      dns.setSilent(true, name);
      const begin = Date.now();
      await d.refresh();
      // Generous bound: a hung server must not hang refresh.
      expect(Date.now() - begin).toBeLessThan(scaled(3_000));
      expect(ids(d.members())).toEqual(twoMembers);
      expect(changes).toEqual([]);
      expect(d.stats()).toMatchObject({ failures: 1, healthy: false });
      expect(d.stats().lastError).toMatch(/ETIMEOUT|lookupTimeout/);

      // It answers again: the next lookup recovers and the stats say so.
      dns.setSilent(false, name);
      dns.setA(name, ['127.0.0.21', '127.0.0.22', '127.0.0.23']);
      await d.refresh();
      expect(d.members()).toHaveLength(3);
      expect(d.stats().healthy).toBe(true);
    });

    it('a stopped DNS server', async () => {
      const own = await startDnsServer();
      try {
        const name = uniqueName();
        own.setA(name, ['127.0.0.22', '127.0.0.21']);
        const d = discover({ host: name, dnsServers: [own.address], lookupTimeout: 500 });
        expect(ids(await d.start())).toEqual(twoMembers);
        await own.close();
        await d.refresh();
        expect(ids(d.members())).toEqual(twoMembers);
        expect(d.stats()).toMatchObject({ lookups: 2, failures: 1, healthy: false });
        expect(d.stats().lastError).toMatch(/ECONNREFUSED|ETIMEOUT|lookupTimeout/);
      } finally {
        await own.close();
      }
    });

    it('a start() against a dead server resolves with an empty list', async () => {
      const own = await startDnsServer();
      const name = uniqueName();
      own.setA(name, ['127.0.0.21']);
      const address = own.address;
      await own.close();
      const d = discover({ host: name, dnsServers: [address], lookupTimeout: 300 });
      await expect(d.start()).resolves.toEqual([]);
      expect(d.stats().healthy).toBe(false);
    });
  });

  it('resolves SRV answers into members with their own ports', async () => {
    const srv = `_memcache._tcp.${uniqueName()}`;
    dns.setSrv(srv, [
      { target: 'pod-1.srv-test.default.svc', port: 11302 },
      { target: 'pod-0.srv-test.default.svc', port: 11301 },
      { target: 'pod-2.srv-test.default.svc', port: 11303, priority: 1, weight: 0 },
    ]);
    dns.setA('pod-0.srv-test.default.svc', ['127.0.0.31']);
    dns.setA('pod-1.srv-test.default.svc', ['127.0.0.32']);
    dns.setA('pod-2.srv-test.default.svc', ['127.0.0.33']);
    const d = discover({ host: srv });
    expect(ids(await d.start())).toEqual([
      '127.0.0.31:11301',
      '127.0.0.32:11302',
      '127.0.0.33:11303',
    ]);
    // The targets were resolved through the same server.
    expect(dns.queryCount('pod-0.srv-test.default.svc', 'A')).toBeGreaterThanOrEqual(1);

    // A pod leaves the SRV answer.
    dns.setSrv(srv, [
      { target: 'pod-0.srv-test.default.svc', port: 11301 },
      { target: 'pod-1.srv-test.default.svc', port: 11302 },
    ]);
    await d.refresh();
    expect(ids(d.members())).toEqual(['127.0.0.31:11301', '127.0.0.32:11302']);
  });

  it('takes name:port and comma lists mixing names and IP literals', async () => {
    const a = uniqueName('a');
    const b = uniqueName('b');
    dns.setA(a, ['127.0.0.41']);
    dns.setA(b, ['127.0.0.42', '127.0.0.41']);
    const d = discover({ host: ` ${a}:11400 , ${b}, 127.0.0.49:11499, [::1]:11498`, port: 11411 });
    expect(ids(await d.start())).toEqual([
      '127.0.0.41:11400',
      '127.0.0.41:11411',
      '127.0.0.42:11411',
      '127.0.0.49:11499',
      '[::1]:11498',
    ]);

    // One name failing keeps its members while the other updates.
    dns.setNxdomain(a);
    dns.setA(b, ['127.0.0.43']);
    await d.refresh();
    expect(ids(d.members())).toEqual([
      '127.0.0.41:11400',
      '127.0.0.43:11411',
      '127.0.0.49:11499',
      '[::1]:11498',
    ]);
    expect(d.stats().lastError).toContain(a);
  });

  it('turns AAAA answers into IPv6 members', async () => {
    const v6 = uniqueName('v6');
    const dual = uniqueName('dual');
    dns.setAAAA(v6, ['fd00::2', 'fd00::1']);
    dns.setA(dual, ['127.0.0.51']);
    dns.setAAAA(dual, ['fd00::51']);
    const d = discover({ host: `${v6},${dual}:11500` });
    expect(ids(await d.start())).toEqual([
      '127.0.0.51:11500',
      '[fd00::1]:11211',
      '[fd00::2]:11211',
      '[fd00::51]:11500',
    ]);
  });

  it('turns a storm of refresh requests into at most one DNS query per window', async () => {
    const name = uniqueName();
    dns.setA(name, ['127.0.0.61']);
    const window = 300;
    const client = instrumented(new DnsServersResolver([dns.address], 1000));
    const d = discover({ host: name, minRefreshInterval: window, resolver: client.resolver });
    await d.start();
    await sleep(window + 50);

    // 200 failures at once: the first starts a lookup right away (synchronously)...
    for (let i = 0; i < 200; i++) d.requestRefresh('ECONNREFUSED 127.0.0.61:11211');
    expect(client.starts).toHaveLength(2);
    // ...the other 199 are owed exactly one more, at the end of the window, and nothing after.
    await waitFor('the owed lookup', () => client.starts.length === 3, window + 5000);
    await sleep(window + 100);
    expect(client.starts).toHaveLength(3);

    // A sustained storm: 10 bursts of 200 over about 1.5 s, then time for the owed lookup.
    const stormFrom = client.starts.length;
    const begin = Date.now();
    for (let burst = 0; burst < 10; burst++) {
      for (let i = 0; i < 200; i++) d.requestRefresh('ECONNRESET');
      await sleep(150);
    }
    await sleep(window + 100);
    const elapsed = Date.now() - begin;
    const storm = client.starts.slice(stormFrom);
    // The storm keeps causing lookups (no stall), but without the rate limit it would be 2000.
    expect(storm.length).toBeGreaterThanOrEqual(3);
    expect(storm.length).toBeLessThanOrEqual(Math.floor(elapsed / window) + 1);
    // Every lookup of the test started at least a window after the one before (a few ms for
    // the clock ticking between the limiter's check and this recording).
    for (const gap of gaps(client.starts)) expect(gap).toBeGreaterThanOrEqual(window - 5);

    // On the wire: one A query per lookup, nothing else, spaced like the lookups. Arrival times
    // carry this process's event-loop lag, hence the looser margin.
    await waitFor(
      'one A query per lookup',
      () => dns.queryTimes(name, 'A').length === client.starts.length,
      5_000,
    );
    for (const gap of gaps(dns.queryTimes(name, 'A'))) {
      expect(gap).toBeGreaterThanOrEqual(window - 100);
    }
    expect(d.stats().lookups).toBe(client.starts.length);
  });

  it('refresh() during an older periodic lookup waits for one that sees the new answer', async () => {
    const name = uniqueName();
    dns.setA(name, ['127.0.0.71']);
    const client = instrumented(new DnsServersResolver([dns.address], 1000));
    const d = discover({
      host: name,
      refreshInterval: 100,
      lookupTimeout: 10_000,
      resolver: client.resolver,
    });
    await d.start();

    // A periodic lookup gets its (soon old) answer from the server but is slow to land.
    client.hold();
    await waitFor('a held lookup', () => client.held() === 1, 5_000);
    const queriesBefore = dns.queryCount(name, 'A');

    // The caller changes DNS, then asks for a lookup: 20 callers at once.
    dns.setA(name, ['127.0.0.72']);
    const refreshed = Array.from({ length: 20 }, () => d.refresh());
    client.release();
    await Promise.all(refreshed);

    expect(ids(d.members())).toEqual(['127.0.0.72:11211']);
    // The 20 callers shared exactly one follow-up lookup.
    expect(dns.queryCount(name, 'A') - queriesBefore).toBe(1);
  });

  it('joins concurrent refresh() calls into one query', async () => {
    const name = uniqueName();
    dns.setA(name, ['127.0.0.62']);
    const d = discover({ host: name });
    await Promise.all(Array.from({ length: 50 }, () => d.refresh()));
    expect(dns.queryCount(name, 'A')).toBe(1);
    expect(dns.queryCount(name, 'AAAA')).toBe(1);
  });

  it('warns once when a Service name keeps resolving to one address (a ClusterIP Service)', async () => {
    const clusterIp = uniqueName('clusterip');
    const headless = uniqueName('headless');
    dns.setA(clusterIp, ['127.0.0.21']);
    dns.setA(headless, ['127.0.0.31', '127.0.0.32']);
    const warnings: string[] = [];
    const d = discover({
      host: `${clusterIp},${headless}`,
      refreshInterval: 100,
      logger: { ...quietLogger, warn: (message: string) => void warnings.push(message) },
    });
    await d.start();
    await waitFor('the warning', () => warnings.length === 1, 5_000);
    expect(warnings[0]).toContain(
      `Cache host "${clusterIp}" has resolved to one address (127.0.0.21)`,
    );
    expect(warnings[0]).toMatch(/clusterIP: None/);
    // Once only, however many lookups follow; the headless name, asked as often, never warns.
    const queries = dns.queryCount(clusterIp, 'A');
    await waitFor('three more lookups', () => dns.queryCount(clusterIp, 'A') >= queries + 3, 5_000);
    expect(dns.queryCount(headless, 'A')).toBeGreaterThanOrEqual(queries + 3);
    expect(warnings).toHaveLength(1);
  });

  describe('DnsServersResolver', () => {
    it('tells "no such name" (empty list) apart from "no answer" (DnsLookupError)', async () => {
      const resolver = new DnsServersResolver([dns.address], 300);
      const name = uniqueName();
      dns.setNxdomain(name);
      await expect(resolver.lookupHost(name)).resolves.toEqual([]);
      dns.setEmpty(name);
      await expect(resolver.lookupHost(name)).resolves.toEqual([]);
      await expect(resolver.resolveSrv(`_x._tcp.${name}`)).resolves.toEqual([]);

      dns.setSilent(true, name);
      const timedOut = await resolver.lookupHost(name).catch((e: unknown) => e);
      expect(timedOut).toBeInstanceOf(DnsLookupError);
      expect(timedOut).toMatchObject({ hostname: name, code: 'ETIMEOUT' });

      dns.setSilent(false, name);
      dns.setServfail(name);
      await expect(resolver.lookupHost(name)).rejects.toMatchObject({ code: 'ESERVFAIL' });
    });
  });

  describe('the system resolver', () => {
    it('resolves localhost from the real /etc/hosts', async () => {
      const d = new MemberDiscovery({
        host: 'localhost:11600',
        refreshInterval: 0,
        logger: quietLogger,
      });
      started.push(d);
      expect(ids(await d.start())).toContain('127.0.0.1:11600');
      await expect(new SystemResolver().lookupHost('localhost')).resolves.toContain('127.0.0.1');
    });

    it('uses an injected lookup function, asking for all addresses', async () => {
      const asked: Array<[string, unknown]> = [];
      let answer: string[] | NodeJS.ErrnoException = ['10.1.0.2', 'fd00::9', '10.1.0.1'];
      const lookup: SystemLookupFunction = async (name, options) => {
        asked.push([name, options]);
        if (answer instanceof Error) throw answer;
        return answer.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
      };
      const d = new MemberDiscovery({
        host: 'mycache-memcached',
        resolver: new SystemResolver({ lookup }),
        refreshInterval: 0,
        logger: quietLogger,
      });
      started.push(d);
      expect(ids(await d.start())).toEqual(['10.1.0.1:11211', '10.1.0.2:11211', '[fd00::9]:11211']);
      expect(asked).toEqual([['mycache-memcached', { all: true }]]);

      // getaddrinfo's "no such name" is an answer (kept list, "no addresses"); EAI_AGAIN a failure.
      answer = Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
      await d.refresh();
      expect(d.members()).toHaveLength(3);
      expect(d.stats().lastError).toMatch(/answered no addresses/);
      answer = Object.assign(new Error('getaddrinfo EAI_AGAIN'), { code: 'EAI_AGAIN' });
      await d.refresh();
      expect(d.members()).toHaveLength(3);
      expect(d.stats().lastError).toMatch(/EAI_AGAIN/);
    });
  });
});
