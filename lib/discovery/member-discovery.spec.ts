import type { LoggerService } from '@nestjs/common';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DnsLookupError } from '../errors/discovery.errors.js';
import { K8sOptionsError } from '../errors/k8s.error.js';
import { MemberDiscovery } from './member-discovery.js';
import type { MemberDiscoveryOptions } from './member-discovery.js';
import { memberId } from './member.js';
import type { DiscoveryStats, Member, MemberDiff, MemberSource } from './member.js';
import type { Resolver, SrvAnswer } from './resolvers.js';

type Answer<T> = T | Error | 'hang';

/** A resolver whose answers the test sets; lookups can be held on a gate to overlap calls. */
class FakeResolver implements Resolver {
  readonly hosts = new Map<string, Answer<string[]>>();
  readonly srv = new Map<string, Answer<SrvAnswer[]>>();
  readonly calls: string[] = [];
  cancelled = 0;
  private gate?: Promise<void>;
  private openGate?: () => void;

  hold(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }

  release(): void {
    this.openGate?.();
    this.gate = undefined;
  }

  lookupHost(name: string): Promise<string[]> {
    return this.answer(`host ${name}`, this.hosts.get(name) ?? []);
  }

  resolveSrv(name: string): Promise<SrvAnswer[]> {
    return this.answer(`srv ${name}`, this.srv.get(name) ?? []);
  }

  cancel(): void {
    this.cancelled++;
  }

  private async answer<T>(call: string, answer: Answer<T>): Promise<T> {
    this.calls.push(call);
    if (this.gate) await this.gate;
    if (answer === 'hang') return new Promise<T>(() => undefined);
    if (answer instanceof Error) throw answer;
    return answer;
  }
}

class FakeLogger implements LoggerService {
  readonly lines: Array<[level: string, message: string]> = [];
  log(message: string): void {
    this.lines.push(['log', message]);
  }
  warn(message: string): void {
    this.lines.push(['warn', message]);
  }
  error(message: string): void {
    this.lines.push(['error', message]);
  }
  debug(message: string): void {
    this.lines.push(['debug', message]);
  }
  at(level: string): string[] {
    return this.lines.filter(([l]) => l === level).map(([, m]) => m);
  }
}

const ids = (members: readonly Member[]) => members.map(memberId);
const unreachable = () =>
  new DnsLookupError('mycache', 'ECONNREFUSED', 'DNS lookup of "mycache" failed (ECONNREFUSED)');

describe('MemberDiscovery', () => {
  let resolver: FakeResolver;
  let logger: FakeLogger;
  const discoveries: MemberDiscovery[] = [];

  const discovery = (options: Partial<MemberDiscoveryOptions> = {}) => {
    const d = new MemberDiscovery({
      host: 'mycache',
      resolver,
      logger,
      refreshInterval: 0,
      ...options,
    });
    discoveries.push(d);
    return d;
  };

  beforeEach(() => {
    resolver = new FakeResolver();
    logger = new FakeLogger();
  });

  afterEach(() => {
    for (const d of discoveries.splice(0)) d.stop();
    resolver.release();
    vi.useRealTimers();
  });

  describe('start', () => {
    it('resolves with the members sorted and de-duplicated', async () => {
      resolver.hosts.set('mycache', ['10.0.0.3', '10.0.0.1', '10.0.0.2', '10.0.0.1']);
      const d = discovery();
      expect(ids(await d.start())).toEqual(['10.0.0.1:11211', '10.0.0.2:11211', '10.0.0.3:11211']);
      expect(ids(d.members())).toEqual(['10.0.0.1:11211', '10.0.0.2:11211', '10.0.0.3:11211']);
    });

    it('uses the port of the item, else the default port', async () => {
      resolver.hosts.set('a', ['10.0.0.1']);
      resolver.hosts.set('b', ['10.0.0.1']);
      const d = discovery({ host: 'a:11300,b', port: 12000 });
      expect(ids(await d.start())).toEqual(['10.0.0.1:11300', '10.0.0.1:12000']);
    });

    it('needs no DNS for IP literals', async () => {
      const d = discovery({ host: '10.0.0.2, [fd00::1]:11212,10.0.0.1' });
      expect(ids(d.members())).toEqual(['10.0.0.1:11211', '10.0.0.2:11211', '[fd00::1]:11212']);
      expect(ids(await d.start())).toEqual(['10.0.0.1:11211', '10.0.0.2:11211', '[fd00::1]:11212']);
      await d.refresh();
      expect(resolver.calls).toEqual([]);
      expect(d.stats().lookups).toBe(0);
    });

    it('resolves with an empty list when the first lookup fails, and never rejects', async () => {
      resolver.hosts.set('mycache', unreachable());
      const d = discovery();
      await expect(d.start()).resolves.toEqual([]);
      expect(d.stats()).toMatchObject({ lookups: 1, failures: 1, healthy: false });
      expect(logger.at('warn')).toEqual([expect.stringMatching(/ECONNREFUSED.*no members yet/)]);
    });

    it('keeps IP literals of a comma list when the DNS items fail', async () => {
      resolver.hosts.set('mycache', unreachable());
      const d = discovery({ host: 'mycache,10.0.0.9' });
      expect(ids(await d.start())).toEqual(['10.0.0.9:11211']);
    });

    it('returns the same promise when called twice', async () => {
      resolver.hosts.set('mycache', ['10.0.0.1']);
      const d = discovery();
      expect(d.start()).toBe(d.start());
      await d.start();
      expect(resolver.calls).toHaveLength(1);
    });
  });

  describe('refresh', () => {
    it('is single-flight: 50 concurrent calls share one lookup', async () => {
      resolver.hosts.set('mycache', ['10.0.0.1']);
      const d = discovery();
      resolver.hold();
      const calls = Array.from({ length: 50 }, () => d.refresh());
      resolver.release();
      await Promise.all(calls);
      expect(resolver.calls).toEqual(['host mycache']);
      expect(d.stats().lookups).toBe(1);
      // Once it ended, the next call looks up again.
      await d.refresh();
      expect(resolver.calls).toHaveLength(2);
    });

    it('waits for one follow-up when the running lookup began before the call', async () => {
      resolver.hosts.set('mycache', ['10.0.0.1']);
      const d = discovery();
      await d.start();
      resolver.hold();
      const older = d.refresh(); // takes the answer 10.0.0.1, then waits on the gate
      await new Promise((resolve) => setImmediate(resolve)); // an event-loop turn: I/O could run

      resolver.hosts.set('mycache', ['10.0.0.2']);
      const newer = Array.from({ length: 20 }, () => d.refresh());
      resolver.release();
      await older;
      await Promise.all(newer);
      expect(ids(d.members())).toEqual(['10.0.0.2:11211']);
      // start, the older lookup, one follow-up shared by the 20 calls.
      expect(resolver.calls).toEqual(['host mycache', 'host mycache', 'host mycache']);
      expect(d.stats().lookups).toBe(3);
    });

    it('lets the periodic refresh join a running lookup instead of chaining another', async () => {
      vi.useFakeTimers();
      resolver.hosts.set('mycache', ['10.0.0.1']);
      const d = discovery({ refreshInterval: 100, minRefreshInterval: 0, lookupTimeout: 10_000 });
      await d.start();
      resolver.calls.length = 0;
      resolver.hold();
      await vi.advanceTimersByTimeAsync(50);
      d.requestRefresh('ECONNREFUSED');
      expect(resolver.calls).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(100); // the periodic timer fires during that lookup
      resolver.release();
      await vi.advanceTimersByTimeAsync(0);
      expect(resolver.calls).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(99);
      expect(resolver.calls).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1); // the periodic refresh, re-armed at the end
      expect(resolver.calls).toHaveLength(2);
    });

    it('never replaces a working list with a failed, empty or NXDOMAIN answer', async () => {
      resolver.hosts.set('mycache', ['10.0.0.1', '10.0.0.2']);
      const d = discovery();
      await d.start();
      const changes = vi.fn();
      d.onChange(changes);

      resolver.hosts.set('mycache', unreachable());
      await d.refresh();
      expect(ids(d.members())).toEqual(['10.0.0.1:11211', '10.0.0.2:11211']);
      expect(d.stats()).toMatchObject({ failures: 1, healthy: false });
      expect(d.stats().lastError).toMatch(/ECONNREFUSED/);

      resolver.hosts.set('mycache', []);
      await d.refresh();
      expect(ids(d.members())).toEqual(['10.0.0.1:11211', '10.0.0.2:11211']);
      expect(d.stats().failures).toBe(2);
      expect(d.stats().lastError).toMatch(
        /"mycache" answered no addresses \(NXDOMAIN or no records\)/,
      );
      expect(changes).not.toHaveBeenCalled();
    });

    it('bounds a hung lookup by lookupTimeout', async () => {
      vi.useFakeTimers();
      resolver.hosts.set('mycache', ['10.0.0.1']);
      const d = discovery({ lookupTimeout: 500 });
      await d.start();
      resolver.hosts.set('mycache', 'hang');
      let done = false;
      const refreshed = d.refresh().then(() => (done = true));
      await vi.advanceTimersByTimeAsync(499);
      expect(done).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      await refreshed;
      expect(ids(d.members())).toEqual(['10.0.0.1:11211']);
      expect(d.stats().lastError).toMatch(/no answer within 500 ms \(lookupTimeout\)/);
    });

    it('resolves every item of a comma list on its own: a failing one keeps its members', async () => {
      resolver.hosts.set('a', ['10.0.0.1', '10.0.0.2']);
      resolver.hosts.set('b', ['10.0.1.1']);
      const d = discovery({ host: 'a,b' });
      await d.start();
      resolver.hosts.set('a', unreachable());
      resolver.hosts.set('b', ['10.0.1.1', '10.0.1.2']);
      const seen: MemberDiff[] = [];
      d.onChange((_, diff) => seen.push(diff));
      await d.refresh();
      expect(ids(d.members())).toEqual([
        '10.0.0.1:11211',
        '10.0.0.2:11211',
        '10.0.1.1:11211',
        '10.0.1.2:11211',
      ]);
      expect(seen).toEqual([{ added: [{ host: '10.0.1.2', port: 11211 }], removed: [] }]);
      expect(d.stats()).toMatchObject({ failures: 1, healthy: false });
    });

    it('tells listeners the diff, and does not call them when only the order changed', async () => {
      resolver.hosts.set('mycache', ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
      const d = discovery();
      await d.start();
      const calls: Array<[string[], MemberDiff]> = [];
      d.onChange((members, diff) => calls.push([ids(members), diff]));

      resolver.hosts.set('mycache', ['10.0.0.3', '10.0.0.1', '10.0.0.2']);
      await d.refresh();
      expect(calls).toEqual([]);

      resolver.hosts.set('mycache', ['10.0.0.4', '10.0.0.2', '10.0.0.3']);
      await d.refresh();
      expect(calls).toEqual([
        [
          ['10.0.0.2:11211', '10.0.0.3:11211', '10.0.0.4:11211'],
          {
            added: [{ host: '10.0.0.4', port: 11211 }],
            removed: [{ host: '10.0.0.1', port: 11211 }],
          },
        ],
      ]);
      expect(logger.at('log')).toContainEqual(
        expect.stringMatching(/added 10\.0\.0\.4:11211; removed 10\.0\.0\.1:11211; now 3/),
      );
    });

    it('keeps calling listeners when one throws, and unsubscribes', async () => {
      resolver.hosts.set('mycache', ['10.0.0.1']);
      const d = discovery();
      await d.start();
      const good = vi.fn();
      d.onChange(() => {
        throw new Error('listener bug');
      });
      const unsubscribe = d.onChange(good);
      resolver.hosts.set('mycache', ['10.0.0.2']);
      await d.refresh();
      expect(good).toHaveBeenCalledTimes(1);
      expect(logger.at('error')).toEqual([expect.stringMatching(/listener threw: listener bug/)]);
      unsubscribe();
      resolver.hosts.set('mycache', ['10.0.0.3']);
      await d.refresh();
      expect(good).toHaveBeenCalledTimes(1);
    });

    it('logs a failure once when it starts and once when it recovers', async () => {
      resolver.hosts.set('mycache', ['10.0.0.1']);
      const d = discovery();
      await d.start();
      resolver.hosts.set('mycache', unreachable());
      for (let i = 0; i < 5; i++) await d.refresh();
      expect(logger.at('warn')).toHaveLength(1);
      expect(logger.at('warn')[0]).toMatch(/failed: .*ECONNREFUSED.*keeping the 1 current members/);
      resolver.hosts.set('mycache', ['10.0.0.1']);
      await d.refresh();
      await d.refresh();
      expect(logger.at('log').filter((m) => m.includes('works again'))).toHaveLength(1);
      expect(d.stats()).toMatchObject({ lookups: 8, failures: 5, healthy: true });
      expect(d.stats().lastSuccessAt).toBeGreaterThanOrEqual(d.stats().lastErrorAt!);
    });
  });

  describe('stats', () => {
    it('reports DiscoveryStats through the MemberSource interface', async () => {
      resolver.hosts.set('mycache', ['10.0.0.2', '10.0.0.1']);
      const source: MemberSource = discovery();
      await source.start();
      const stats: DiscoveryStats | undefined = source.stats?.();
      expect(stats).toEqual({
        healthy: true,
        lookups: 1,
        lookupsByReason: { start: 1, periodic: 0, failure: 0, manual: 0 },
        failures: 0,
        lastError: undefined,
        lastErrorAt: undefined,
        lastSuccessAt: expect.any(Number),
        members: ['10.0.0.1:11211', '10.0.0.2:11211'],
      });

      resolver.hosts.set('mycache', unreachable());
      await source.refresh();
      expect(source.stats?.()).toMatchObject({
        healthy: false,
        lookups: 2,
        lookupsByReason: { start: 1, periodic: 0, failure: 0, manual: 1 },
        failures: 1,
        lastError: expect.stringMatching(/ECONNREFUSED/),
        lastErrorAt: expect.any(Number),
        members: ['10.0.0.1:11211', '10.0.0.2:11211'],
      });
    });
  });

  describe('SRV', () => {
    it('resolves each answer with its own port; a "." target is skipped', async () => {
      resolver.srv.set('_memcache._tcp.mycache', [
        { name: 'pod-1.mycache', port: 11212 },
        { name: 'pod-0.mycache.', port: 11211 },
        { name: '10.0.0.9', port: 11213 },
        { name: '.', port: 11214 },
      ]);
      resolver.hosts.set('pod-0.mycache', ['10.0.0.1']);
      resolver.hosts.set('pod-1.mycache', ['10.0.0.2', 'fd00::2']);
      const d = discovery({ host: '_memcache._tcp.mycache' });
      expect(ids(await d.start())).toEqual([
        '10.0.0.1:11211',
        '10.0.0.2:11212',
        '10.0.0.9:11213',
        '[fd00::2]:11212',
      ]);
    });

    it('keeps the previous list when a target lookup fails', async () => {
      resolver.srv.set('_mc._tcp.c', [
        { name: 'p0', port: 1 },
        { name: 'p1', port: 2 },
      ]);
      resolver.hosts.set('p0', ['10.0.0.1']);
      resolver.hosts.set('p1', ['10.0.0.2']);
      const d = discovery({ host: '_mc._tcp.c' });
      await d.start();
      resolver.hosts.set('p1', unreachable());
      resolver.hosts.set('p0', ['10.0.0.5']);
      await d.refresh();
      expect(ids(d.members())).toEqual(['10.0.0.1:1', '10.0.0.2:2']);
      expect(d.stats().healthy).toBe(false);
    });

    it('treats no SRV answers as a failed lookup', async () => {
      resolver.srv.set('_mc._tcp.c', [{ name: 'p0', port: 1 }]);
      resolver.hosts.set('p0', ['10.0.0.1']);
      const d = discovery({ host: '_mc._tcp.c' });
      await d.start();
      resolver.srv.set('_mc._tcp.c', []);
      await d.refresh();
      expect(ids(d.members())).toEqual(['10.0.0.1:1']);
      expect(d.stats().lastError).toMatch(/"_mc._tcp.c" answered no addresses/);
    });
  });

  describe('requestRefresh', () => {
    beforeEach(() => {
      vi.useFakeTimers();
      resolver.hosts.set('mycache', ['10.0.0.1']);
    });

    it('turns a storm of 200 requests into one lookup per window', async () => {
      const d = discovery({ minRefreshInterval: 1000 });
      await d.start();
      await vi.advanceTimersByTimeAsync(1000); // out of the window of start()'s lookup
      resolver.calls.length = 0;

      for (let i = 0; i < 200; i++) d.requestRefresh('ECONNREFUSED 10.0.0.1:11211');
      await vi.advanceTimersByTimeAsync(0);
      expect(resolver.calls).toHaveLength(1);
      // Requests inside the window are owed one lookup at its end, not 199.
      await vi.advanceTimersByTimeAsync(999);
      expect(resolver.calls).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(resolver.calls).toHaveLength(2);
      // Nobody asked since: nothing more.
      await vi.advanceTimersByTimeAsync(5000);
      expect(resolver.calls).toHaveLength(2);
    });

    it('never exceeds one lookup per window under a long storm', async () => {
      const d = discovery({ minRefreshInterval: 1000 });
      await d.start();
      resolver.calls.length = 0;
      // 5 s of 200 requests every 25 ms.
      for (let t = 0; t < 5000; t += 25) {
        for (let i = 0; i < 200; i++) d.requestRefresh('ECONNRESET');
        await vi.advanceTimersByTimeAsync(25);
      }
      expect(resolver.calls.length).toBeGreaterThanOrEqual(5);
      expect(resolver.calls.length).toBeLessThanOrEqual(6);
    });

    it('counts any lookup toward the window', async () => {
      const d = discovery({ minRefreshInterval: 1000 });
      await d.start();
      resolver.calls.length = 0;
      d.requestRefresh('ECONNREFUSED');
      await vi.advanceTimersByTimeAsync(0);
      expect(resolver.calls).toHaveLength(0);
      await vi.advanceTimersByTimeAsync(1000);
      expect(resolver.calls).toHaveLength(1);
    });

    it('never throws, and does nothing for IP literals or after stop', async () => {
      const ipOnly = discovery({ host: '10.0.0.1' });
      expect(() => ipOnly.requestRefresh('x')).not.toThrow();
      const d = discovery({ minRefreshInterval: 0 });
      d.stop();
      d.requestRefresh('x');
      await vi.advanceTimersByTimeAsync(5000);
      expect(resolver.calls).toEqual([]);
    });
  });

  describe('periodic refresh', () => {
    beforeEach(() => {
      vi.useFakeTimers();
      resolver.hosts.set('mycache', ['10.0.0.1']);
    });

    it('runs every refreshInterval after start and picks up changes', async () => {
      const d = discovery({ refreshInterval: 1000 });
      await d.start();
      resolver.hosts.set('mycache', ['10.0.0.2']);
      await vi.advanceTimersByTimeAsync(999);
      expect(ids(d.members())).toEqual(['10.0.0.1:11211']);
      await vi.advanceTimersByTimeAsync(1);
      expect(ids(d.members())).toEqual(['10.0.0.2:11211']);
      await vi.advanceTimersByTimeAsync(3000);
      expect(d.stats().lookups).toBe(5);
    });

    it('re-arms only after a lookup ends, so slow lookups never overlap', async () => {
      const d = discovery({ refreshInterval: 100, lookupTimeout: 10_000 });
      await d.start();
      resolver.calls.length = 0;
      resolver.hold();
      await vi.advanceTimersByTimeAsync(100);
      expect(resolver.calls).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(2000);
      expect(resolver.calls).toHaveLength(1);
      resolver.release();
      await vi.advanceTimersByTimeAsync(0);
      await vi.advanceTimersByTimeAsync(100);
      expect(resolver.calls).toHaveLength(2);
    });

    it('is off with refreshInterval 0', async () => {
      const d = discovery({ refreshInterval: 0 });
      await d.start();
      await vi.advanceTimersByTimeAsync(600_000);
      expect(d.stats().lookups).toBe(1);
    });

    it('leaves no timer holding the event loop', async () => {
      const d = discovery({ refreshInterval: 1000 });
      await d.start();
      expect(vi.getTimerCount()).toBe(1);
      d.stop();
      expect(vi.getTimerCount()).toBe(0);
    });
  });

  describe('stop', () => {
    it('drops the result of a lookup in flight, starts none afterwards, cancels the resolver', async () => {
      resolver.hosts.set('mycache', ['10.0.0.1']);
      const d = discovery({ refreshInterval: 10, minRefreshInterval: 0 });
      await d.start();
      const changes = vi.fn();
      d.onChange(changes);
      resolver.hosts.set('mycache', ['10.0.0.2']);
      resolver.hold();
      const pending = d.refresh();
      d.stop();
      resolver.release();
      await pending;
      expect(ids(d.members())).toEqual(['10.0.0.1:11211']);
      expect(changes).not.toHaveBeenCalled();
      expect(resolver.cancelled).toBe(1);

      const calls = resolver.calls.length;
      await d.refresh();
      d.requestRefresh('after stop');
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(resolver.calls).toHaveLength(calls);
    });
  });

  describe('options', () => {
    // Numbers are validated once, by resolveCacheOptions (see cache-options.spec.ts); what the
    // source parses itself (the host, the DNS servers) fails here.
    it.each([
      [{ host: 'a b' }, /Invalid cache host "a b"/],
      [{ port: 70000 }, /port 70000/],
      [{ resolver: undefined, dnsServers: ['not an address'] }, /Invalid cache dnsServers/],
    ])('rejects %j with K8sOptionsError', (options, message) => {
      expect(() => discovery(options as Partial<MemberDiscoveryOptions>)).toThrow(K8sOptionsError);
      expect(() => discovery(options as Partial<MemberDiscoveryOptions>)).toThrow(message);
    });
  });
});
