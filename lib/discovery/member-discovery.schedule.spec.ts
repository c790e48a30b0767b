import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DiscoveryFixture, ids } from './member-discovery.fixture.js';

describe('MemberDiscovery: requested and periodic lookups', () => {
  let fx: DiscoveryFixture;
  beforeEach(() => {
    fx = new DiscoveryFixture();
    vi.useFakeTimers();
    fx.resolver.hosts.set('mycache', ['10.0.0.1']);
  });
  afterEach(() => {
    fx.stop();
    vi.useRealTimers();
  });

  describe('requestRefresh', () => {
    it('turns a storm of 200 requests into one lookup per window', async () => {
      const d = fx.discovery({ minRefreshInterval: 1000 });
      await d.start();
      await vi.advanceTimersByTimeAsync(1000); // out of the window of start()'s lookup
      fx.resolver.calls.length = 0;

      for (let i = 0; i < 200; i++) d.requestRefresh('ECONNREFUSED 10.0.0.1:11211');
      await vi.advanceTimersByTimeAsync(0);
      expect(fx.resolver.calls).toHaveLength(1);
      // Requests inside the window are owed one lookup at its end, not 199.
      await vi.advanceTimersByTimeAsync(999);
      expect(fx.resolver.calls).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(fx.resolver.calls).toHaveLength(2);
      // Nobody asked since: nothing more.
      await vi.advanceTimersByTimeAsync(5000);
      expect(fx.resolver.calls).toHaveLength(2);
    });

    it('never exceeds one lookup per window under a long storm', async () => {
      const d = fx.discovery({ minRefreshInterval: 1000 });
      await d.start();
      fx.resolver.calls.length = 0;
      // 5 s of 200 requests every 25 ms.
      for (let t = 0; t < 5000; t += 25) {
        for (let i = 0; i < 200; i++) d.requestRefresh('ECONNRESET');
        await vi.advanceTimersByTimeAsync(25);
      }
      expect(fx.resolver.calls.length).toBeGreaterThanOrEqual(5);
      expect(fx.resolver.calls.length).toBeLessThanOrEqual(6);
    });

    it('counts any lookup toward the window', async () => {
      const d = fx.discovery({ minRefreshInterval: 1000 });
      await d.start();
      fx.resolver.calls.length = 0;
      d.requestRefresh('ECONNREFUSED');
      await vi.advanceTimersByTimeAsync(0);
      expect(fx.resolver.calls).toHaveLength(0);
      await vi.advanceTimersByTimeAsync(1000);
      expect(fx.resolver.calls).toHaveLength(1);
    });

    it('never throws, and does nothing for IP literals or after stop', async () => {
      const ipOnly = fx.discovery({ host: '10.0.0.1' });
      expect(() => ipOnly.requestRefresh('x')).not.toThrow();
      const d = fx.discovery({ minRefreshInterval: 0 });
      d.stop();
      d.requestRefresh('x');
      await vi.advanceTimersByTimeAsync(5000);
      expect(fx.resolver.calls).toEqual([]);
    });
  });

  describe('periodic refresh', () => {
    it('runs every refreshInterval after start and picks up changes', async () => {
      const d = fx.discovery({ refreshInterval: 1000 });
      await d.start();
      fx.resolver.hosts.set('mycache', ['10.0.0.2']);
      await vi.advanceTimersByTimeAsync(999);
      expect(ids(d.members())).toEqual(['10.0.0.1:11211']);
      await vi.advanceTimersByTimeAsync(1);
      expect(ids(d.members())).toEqual(['10.0.0.2:11211']);
      await vi.advanceTimersByTimeAsync(3000);
      expect(d.stats().lookups).toBe(5);
    });

    it('re-arms only after a lookup ends, so slow lookups never overlap', async () => {
      const d = fx.discovery({ refreshInterval: 100, lookupTimeout: 10_000 });
      await d.start();
      fx.resolver.calls.length = 0;
      fx.resolver.hold();
      await vi.advanceTimersByTimeAsync(100);
      expect(fx.resolver.calls).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(2000);
      expect(fx.resolver.calls).toHaveLength(1);
      fx.resolver.release();
      await vi.advanceTimersByTimeAsync(0);
      await vi.advanceTimersByTimeAsync(100);
      expect(fx.resolver.calls).toHaveLength(2);
    });

    it('is off with refreshInterval 0', async () => {
      const d = fx.discovery({ refreshInterval: 0 });
      await d.start();
      await vi.advanceTimersByTimeAsync(600_000);
      expect(d.stats().lookups).toBe(1);
    });

    it('leaves no timer holding the event loop', async () => {
      const d = fx.discovery({ refreshInterval: 1000 });
      await d.start();
      expect(vi.getTimerCount()).toBe(1);
      d.stop();
      expect(vi.getTimerCount()).toBe(0);
    });
  });
});
