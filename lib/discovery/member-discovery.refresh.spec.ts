import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { MemberDiff } from './member.js';
import { DiscoveryFixture, ids, unreachable } from './member-discovery.fixture.js';

describe('MemberDiscovery: refresh', () => {
  let fx: DiscoveryFixture;
  beforeEach(() => (fx = new DiscoveryFixture()));
  afterEach(() => {
    fx.stop();
    vi.useRealTimers();
  });

  describe('refresh', () => {
    it('is single-flight: 50 concurrent calls share one lookup', async () => {
      fx.resolver.hosts.set('mycache', ['10.0.0.1']);
      const d = fx.discovery();
      fx.resolver.hold();
      const calls = Array.from({ length: 50 }, () => d.refresh());
      fx.resolver.release();
      await Promise.all(calls);
      expect(fx.resolver.calls).toEqual(['host mycache']);
      expect(d.stats().lookups).toBe(1);
      // Once it ended, the next call looks up again.
      await d.refresh();
      expect(fx.resolver.calls).toHaveLength(2);
    });

    it('waits for one follow-up when the running lookup began before the call', async () => {
      fx.resolver.hosts.set('mycache', ['10.0.0.1']);
      const d = fx.discovery();
      await d.start();
      fx.resolver.hold();
      const older = d.refresh(); // takes the answer 10.0.0.1, then waits on the gate
      await new Promise((resolve) => setImmediate(resolve)); // an event-loop turn: I/O could run

      fx.resolver.hosts.set('mycache', ['10.0.0.2']);
      const newer = Array.from({ length: 20 }, () => d.refresh());
      fx.resolver.release();
      await older;
      await Promise.all(newer);
      expect(ids(d.members())).toEqual(['10.0.0.2:11211']);
      // start, the older lookup, one follow-up shared by the 20 calls.
      expect(fx.resolver.calls).toEqual(['host mycache', 'host mycache', 'host mycache']);
      expect(d.stats().lookups).toBe(3);
    });

    it('lets the periodic refresh join a running lookup instead of chaining another', async () => {
      vi.useFakeTimers();
      fx.resolver.hosts.set('mycache', ['10.0.0.1']);
      const d = fx.discovery({
        refreshInterval: 100,
        minRefreshInterval: 0,
        lookupTimeout: 10_000,
      });
      await d.start();
      fx.resolver.calls.length = 0;
      fx.resolver.hold();
      await vi.advanceTimersByTimeAsync(50);
      d.requestRefresh('ECONNREFUSED');
      expect(fx.resolver.calls).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(100); // the periodic timer fires during that lookup
      fx.resolver.release();
      await vi.advanceTimersByTimeAsync(0);
      expect(fx.resolver.calls).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(99);
      expect(fx.resolver.calls).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1); // the periodic refresh, re-armed at the end
      expect(fx.resolver.calls).toHaveLength(2);
    });

    it('never replaces a working list with a failed, empty or NXDOMAIN answer', async () => {
      fx.resolver.hosts.set('mycache', ['10.0.0.1', '10.0.0.2']);
      const d = fx.discovery();
      await d.start();
      const changes = vi.fn();
      d.onChange(changes);

      fx.resolver.hosts.set('mycache', unreachable());
      await d.refresh();
      expect(ids(d.members())).toEqual(['10.0.0.1:11211', '10.0.0.2:11211']);
      expect(d.stats()).toMatchObject({ failures: 1, healthy: false });
      expect(d.stats().lastError).toMatch(/ECONNREFUSED/);

      fx.resolver.hosts.set('mycache', []);
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
      fx.resolver.hosts.set('mycache', ['10.0.0.1']);
      const d = fx.discovery({ lookupTimeout: 500 });
      await d.start();
      fx.resolver.hosts.set('mycache', 'hang');
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
      fx.resolver.hosts.set('a', ['10.0.0.1', '10.0.0.2']);
      fx.resolver.hosts.set('b', ['10.0.1.1']);
      const d = fx.discovery({ host: 'a,b' });
      await d.start();
      fx.resolver.hosts.set('a', unreachable());
      fx.resolver.hosts.set('b', ['10.0.1.1', '10.0.1.2']);
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
      fx.resolver.hosts.set('mycache', ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
      const d = fx.discovery();
      await d.start();
      const calls: Array<[string[], MemberDiff]> = [];
      d.onChange((members, diff) => calls.push([ids(members), diff]));

      fx.resolver.hosts.set('mycache', ['10.0.0.3', '10.0.0.1', '10.0.0.2']);
      await d.refresh();
      expect(calls).toEqual([]);

      fx.resolver.hosts.set('mycache', ['10.0.0.4', '10.0.0.2', '10.0.0.3']);
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
      expect(fx.logger.at('log')).toContainEqual(
        expect.stringMatching(/added 10\.0\.0\.4:11211; removed 10\.0\.0\.1:11211; now 3/),
      );
    });

    it('keeps calling listeners when one throws, and unsubscribes', async () => {
      fx.resolver.hosts.set('mycache', ['10.0.0.1']);
      const d = fx.discovery();
      await d.start();
      const good = vi.fn();
      d.onChange(() => {
        throw new Error('listener bug');
      });
      const unsubscribe = d.onChange(good);
      fx.resolver.hosts.set('mycache', ['10.0.0.2']);
      await d.refresh();
      expect(good).toHaveBeenCalledTimes(1);
      expect(fx.logger.at('error')).toEqual([
        expect.stringMatching(/listener threw: listener bug/),
      ]);
      unsubscribe();
      fx.resolver.hosts.set('mycache', ['10.0.0.3']);
      await d.refresh();
      expect(good).toHaveBeenCalledTimes(1);
    });

    it('logs a failure once when it starts and once when it recovers', async () => {
      fx.resolver.hosts.set('mycache', ['10.0.0.1']);
      const d = fx.discovery();
      await d.start();
      fx.resolver.hosts.set('mycache', unreachable());
      for (let i = 0; i < 5; i++) await d.refresh();
      expect(fx.logger.at('warn')).toHaveLength(1);
      expect(fx.logger.at('warn')[0]).toMatch(
        /failed: .*ECONNREFUSED.*keeping the 1 current members/,
      );
      fx.resolver.hosts.set('mycache', ['10.0.0.1']);
      await d.refresh();
      await d.refresh();
      expect(fx.logger.at('log').filter((m) => m.includes('works again'))).toHaveLength(1);
      expect(d.stats()).toMatchObject({ lookups: 8, failures: 5, healthy: true });
      expect(d.stats().lastSuccessAt).toBeGreaterThanOrEqual(d.stats().lastErrorAt!);
    });
  });
});
