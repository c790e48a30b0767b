import { describe, expect, it } from 'vitest';
import { DnsLookupError } from '../errors/discovery.errors.js';
import { K8sOptionsError } from '../errors/k8s.error.js';
import { DnsServersResolver, SystemResolver } from './resolvers.js';

const dnsError = (code: string) => Object.assign(new Error(`queryA ${code} x`), { code });

describe('SystemResolver', () => {
  it('returns every address of the injected lookup, asking for all of them', async () => {
    const calls: unknown[] = [];
    const resolver = new SystemResolver({
      lookup: async (name, options) => {
        calls.push([name, options]);
        return [
          { address: '10.0.0.1', family: 4 },
          { address: 'fd00::1', family: 6 },
        ];
      },
    });
    await expect(resolver.lookupHost('mycache')).resolves.toEqual(['10.0.0.1', 'fd00::1']);
    expect(calls).toEqual([['mycache', { all: true }]]);
  });

  it.each(['ENOTFOUND', 'ENODATA'])('answers %s with an empty list', async (code) => {
    const resolver = new SystemResolver({
      lookup: () => Promise.reject(dnsError(code)),
      resolveSrv: () => Promise.reject(dnsError(code)),
    });
    await expect(resolver.lookupHost('mycache')).resolves.toEqual([]);
    await expect(resolver.resolveSrv('_mc._tcp.mycache')).resolves.toEqual([]);
  });

  it.each(['EAI_AGAIN', 'ETIMEOUT', 'ECONNREFUSED', 'ESERVFAIL'])(
    'rejects %s with a DnsLookupError that keeps the code',
    async (code) => {
      const resolver = new SystemResolver({
        lookup: () => Promise.reject(dnsError(code)),
        resolveSrv: () => Promise.reject(dnsError(code)),
      });
      const error = await resolver.lookupHost('mycache').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DnsLookupError);
      expect(error).toMatchObject({ hostname: 'mycache', code });
      expect((error as Error).message).toMatch(/check that the DNS server is reachable/);
      await expect(resolver.resolveSrv('_mc._tcp.mycache')).rejects.toMatchObject({ code });
    },
  );

  it('returns SRV answers as name and port', async () => {
    const resolver = new SystemResolver({
      resolveSrv: async () => [{ name: 'pod-0', port: 11211, priority: 0, weight: 5 }] as never,
    });
    await expect(resolver.resolveSrv('_mc._tcp.c')).resolves.toEqual([
      { name: 'pod-0', port: 11211 },
    ]);
  });

  it('shares a pending lookup of a name instead of starting another', async () => {
    let calls = 0;
    let answer!: (v: Array<{ address: string; family: number }>) => void;
    const resolver = new SystemResolver({
      lookup: () => {
        calls++;
        return new Promise((resolve) => (answer = resolve));
      },
    });
    const first = resolver.lookupHost('mycache');
    const second = resolver.lookupHost('mycache');
    expect(calls).toBe(1);
    answer([{ address: '10.0.0.1', family: 4 }]);
    await expect(Promise.all([first, second])).resolves.toEqual([['10.0.0.1'], ['10.0.0.1']]);
    // Once answered, the next call asks again.
    const third = resolver.lookupHost('mycache');
    expect(calls).toBe(2);
    answer([]);
    await expect(third).resolves.toEqual([]);
  });

  it('answers IP literals without a lookup', async () => {
    const resolver = new SystemResolver({ lookup: () => Promise.reject(new Error('no DNS')) });
    await expect(resolver.lookupHost('10.0.0.1')).resolves.toEqual(['10.0.0.1']);
    await expect(resolver.lookupHost('fd00::1')).resolves.toEqual(['fd00::1']);
  });
});

describe('DnsServersResolver', () => {
  it('accepts host, host:port and [ipv6]:port', () => {
    expect(
      () => new DnsServersResolver(['10.0.0.10', '127.0.0.1:5353', '[::1]:53'], 100),
    ).not.toThrow();
  });

  it.each([[[]], [['dns.example.com']], [['127.0.0.1:notaport']]])(
    'rejects %j with K8sOptionsError',
    (servers) => {
      expect(() => new DnsServersResolver(servers, 100)).toThrow(K8sOptionsError);
      expect(() => new DnsServersResolver(servers, 100)).toThrow(/Invalid cache dnsServers/);
    },
  );
});
