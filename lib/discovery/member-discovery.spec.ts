import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { K8sOptionsError } from '../errors/k8s.error.js';
import type { MemberDiscoveryOptions } from './member-discovery.js';
import type { DiscoveryStats, MemberSource } from './member.js';
import { DiscoveryFixture, ids, unreachable } from './member-discovery.fixture.js';
import { sleep } from '../../test/support/wait-for.js';

describe('MemberDiscovery: start, stats, SRV, stop, options', () => {
  let fx: DiscoveryFixture;
  beforeEach(() => (fx = new DiscoveryFixture()));
  afterEach(() => fx.stop());

  describe('start', () => {
    it('resolves with the members sorted and de-duplicated', async () => {
      fx.resolver.hosts.set('mycache', ['10.0.0.3', '10.0.0.1', '10.0.0.2', '10.0.0.1']);
      const d = fx.discovery();
      expect(ids(await d.start())).toEqual(['10.0.0.1:11211', '10.0.0.2:11211', '10.0.0.3:11211']);
      expect(ids(d.members())).toEqual(['10.0.0.1:11211', '10.0.0.2:11211', '10.0.0.3:11211']);
    });

    it('uses the port of the item, else the default port', async () => {
      fx.resolver.hosts.set('a', ['10.0.0.1']);
      fx.resolver.hosts.set('b', ['10.0.0.1']);
      const d = fx.discovery({ host: 'a:11300,b', port: 12000 });
      expect(ids(await d.start())).toEqual(['10.0.0.1:11300', '10.0.0.1:12000']);
    });

    it('needs no DNS for IP literals', async () => {
      const d = fx.discovery({ host: '10.0.0.2, [fd00::1]:11212,10.0.0.1' });
      expect(ids(d.members())).toEqual(['10.0.0.1:11211', '10.0.0.2:11211', '[fd00::1]:11212']);
      expect(ids(await d.start())).toEqual(['10.0.0.1:11211', '10.0.0.2:11211', '[fd00::1]:11212']);
      await d.refresh();
      expect(fx.resolver.calls).toEqual([]);
      expect(d.stats().lookups).toBe(0);
    });

    it('resolves with an empty list when the first lookup fails, and never rejects', async () => {
      fx.resolver.hosts.set('mycache', unreachable());
      const d = fx.discovery();
      await expect(d.start()).resolves.toEqual([]);
      expect(d.stats()).toMatchObject({ lookups: 1, failures: 1, healthy: false });
      expect(fx.logger.at('warn')).toEqual([expect.stringMatching(/ECONNREFUSED.*no members yet/)]);
    });

    it('keeps IP literals of a comma list when the DNS items fail', async () => {
      fx.resolver.hosts.set('mycache', unreachable());
      const d = fx.discovery({ host: 'mycache,10.0.0.9' });
      expect(ids(await d.start())).toEqual(['10.0.0.9:11211']);
    });

    it('returns the same promise when called twice', async () => {
      fx.resolver.hosts.set('mycache', ['10.0.0.1']);
      const d = fx.discovery();
      expect(d.start()).toBe(d.start());
      await d.start();
      expect(fx.resolver.calls).toHaveLength(1);
    });
  });

  describe('stats', () => {
    it('reports DiscoveryStats through the MemberSource interface', async () => {
      fx.resolver.hosts.set('mycache', ['10.0.0.2', '10.0.0.1']);
      const source: MemberSource = fx.discovery();
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

      fx.resolver.hosts.set('mycache', unreachable());
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
      fx.resolver.srv.set('_memcache._tcp.mycache', [
        { name: 'pod-1.mycache', port: 11212 },
        { name: 'pod-0.mycache.', port: 11211 },
        { name: '10.0.0.9', port: 11213 },
        { name: '.', port: 11214 },
      ]);
      fx.resolver.hosts.set('pod-0.mycache', ['10.0.0.1']);
      fx.resolver.hosts.set('pod-1.mycache', ['10.0.0.2', 'fd00::2']);
      const d = fx.discovery({ host: '_memcache._tcp.mycache' });
      expect(ids(await d.start())).toEqual([
        '10.0.0.1:11211',
        '10.0.0.2:11212',
        '10.0.0.9:11213',
        '[fd00::2]:11212',
      ]);
    });

    it('keeps the previous list when a target lookup fails', async () => {
      fx.resolver.srv.set('_mc._tcp.c', [
        { name: 'p0', port: 1 },
        { name: 'p1', port: 2 },
      ]);
      fx.resolver.hosts.set('p0', ['10.0.0.1']);
      fx.resolver.hosts.set('p1', ['10.0.0.2']);
      const d = fx.discovery({ host: '_mc._tcp.c' });
      await d.start();
      fx.resolver.hosts.set('p1', unreachable());
      fx.resolver.hosts.set('p0', ['10.0.0.5']);
      await d.refresh();
      expect(ids(d.members())).toEqual(['10.0.0.1:1', '10.0.0.2:2']);
      expect(d.stats().healthy).toBe(false);
    });

    it('treats no SRV answers as a failed lookup', async () => {
      fx.resolver.srv.set('_mc._tcp.c', [{ name: 'p0', port: 1 }]);
      fx.resolver.hosts.set('p0', ['10.0.0.1']);
      const d = fx.discovery({ host: '_mc._tcp.c' });
      await d.start();
      fx.resolver.srv.set('_mc._tcp.c', []);
      await d.refresh();
      expect(ids(d.members())).toEqual(['10.0.0.1:1']);
      expect(d.stats().lastError).toMatch(/"_mc._tcp.c" answered no addresses/);
    });
  });

  describe('stop', () => {
    it('drops the result of a lookup in flight, starts none afterwards, cancels the resolver', async () => {
      fx.resolver.hosts.set('mycache', ['10.0.0.1']);
      const d = fx.discovery({ refreshInterval: 10, minRefreshInterval: 0 });
      await d.start();
      const changes = vi.fn();
      d.onChange(changes);
      fx.resolver.hosts.set('mycache', ['10.0.0.2']);
      fx.resolver.hold();
      const pending = d.refresh();
      d.stop();
      fx.resolver.release();
      await pending;
      expect(ids(d.members())).toEqual(['10.0.0.1:11211']);
      expect(changes).not.toHaveBeenCalled();
      expect(fx.resolver.cancelled).toBe(1);

      const calls = fx.resolver.calls.length;
      await d.refresh();
      d.requestRefresh('after stop');
      await sleep(50);
      expect(fx.resolver.calls).toHaveLength(calls);

      // Control: a source that was not stopped does look up again within the same 50 ms.
      const control = fx.discovery({ refreshInterval: 10, minRefreshInterval: 0 });
      await control.start();
      const controlCalls = fx.resolver.calls.length;
      control.requestRefresh('control');
      await sleep(50);
      control.stop();
      expect(fx.resolver.calls.length).toBeGreaterThan(controlCalls);
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
      expect(() => fx.discovery(options as Partial<MemberDiscoveryOptions>)).toThrow(
        K8sOptionsError,
      );
      expect(() => fx.discovery(options as Partial<MemberDiscoveryOptions>)).toThrow(message);
    });
  });
});
