import { describe, expect, it } from 'vitest';
import { K8sOptionsError } from '../errors/k8s.error.js';
import { parseHostSpec } from './host-spec.js';

describe('parseHostSpec', () => {
  it.each([
    ['mycache-memcached', [{ kind: 'name', name: 'mycache-memcached', port: 11211 }]],
    [
      'mycache-memcached.default.svc.cluster.local',
      [{ kind: 'name', name: 'mycache-memcached.default.svc.cluster.local', port: 11211 }],
    ],
    ['MyCache.Example.', [{ kind: 'name', name: 'mycache.example.', port: 11211 }]],
    ['mycache:11311', [{ kind: 'name', name: 'mycache', port: 11311 }]],
    ['localhost', [{ kind: 'name', name: 'localhost', port: 11211 }]],
    ['10.0.0.5', [{ kind: 'ip', host: '10.0.0.5', port: 11211 }]],
    ['10.0.0.5:1', [{ kind: 'ip', host: '10.0.0.5', port: 1 }]],
    ['10.0.0.5:65535', [{ kind: 'ip', host: '10.0.0.5', port: 65535 }]],
    ['fd00::1', [{ kind: 'ip', host: 'fd00::1', port: 11211 }]],
    ['::1', [{ kind: 'ip', host: '::1', port: 11211 }]],
    ['[fd00::1]:11212', [{ kind: 'ip', host: 'fd00::1', port: 11212 }]],
    ['[FD00:0:0::1]', [{ kind: 'ip', host: 'fd00::1', port: 11211 }]],
    ['_memcache._tcp.mycache', [{ kind: 'srv', name: '_memcache._tcp.mycache' }]],
    [
      ' a , 10.0.0.1:11300 ,_mc._tcp.b, [::1]:5 ,c:7',
      [
        { kind: 'name', name: 'a', port: 11211 },
        { kind: 'ip', host: '10.0.0.1', port: 11300 },
        { kind: 'srv', name: '_mc._tcp.b' },
        { kind: 'ip', host: '::1', port: 5 },
        { kind: 'name', name: 'c', port: 7 },
      ],
    ],
  ])('parses %j', (host, expected) => {
    expect(parseHostSpec(host, 11211)).toEqual(expected);
  });

  it('uses the given default port for items without one', () => {
    expect(parseHostSpec('a,10.0.0.1,fd00::2', 12000)).toEqual([
      { kind: 'name', name: 'a', port: 12000 },
      { kind: 'ip', host: '10.0.0.1', port: 12000 },
      { kind: 'ip', host: 'fd00::2', port: 12000 },
    ]);
  });

  it('accepts 63-character labels and 253-character names', () => {
    const label = 'a'.repeat(63);
    const name = [label, label, label, 'b'.repeat(61)].join('.');
    expect(name).toHaveLength(253);
    expect(parseHostSpec(name, 11211)).toEqual([{ kind: 'name', name, port: 11211 }]);
  });

  it.each([
    ['', /it is empty/],
    ['   ', /it is empty/],
    ['a,,b', /item 2 is empty/],
    ['a,', /item 2 is empty/],
    [',a', /item 1 is empty/],
    ['my cache', /"my cache": it contains whitespace/],
    ['mycache:0', /"mycache:0": the port "0" must be an integer from 1 to 65535/],
    ['mycache:65536', /the port "65536" must be an integer from 1 to 65535/],
    ['mycache:-1', /the port "-1" must be an integer/],
    ['mycache:11211.5', /the port "11211.5" must be an integer/],
    ['mycache:http', /the port "http" must be an integer/],
    ['mycache:', /the port "" must be an integer/],
    ['10.0.0.1:99999', /the port "99999"/],
    [':11211', /the host name before ":" is missing/],
    ['_memcache._tcp.mycache:11211', /SRV name cannot carry a port .*remove ":11211"/],
    ['my_cache!', /label "my_cache!" has characters a DNS name cannot have/],
    ['cache/1', /label "cache\/1" has characters/],
    ['-cache', /label "-cache" has characters .*not "-" at either end/],
    ['a..b', /empty label/],
    ['.a', /empty label/],
    [`${'a'.repeat(64)}.svc`, /label "a{64}" is 64 characters long; DNS allows at most 63/],
    [
      Array.from({ length: 5 }, () => 'a'.repeat(60)).join('.'),
      /the name is 304 characters long; DNS allows at most 253/,
    ],
    ['256.1.1.1', /"256.1.1.1" is not a valid IPv4 address/],
    ['10.0.0', /"10.0.0" is not a valid IPv4 address/],
    ['fd00::1:gg', /not a valid IPv6 address .*\[address\]:port/],
    ['fd00::1::2', /not a valid IPv6 address/],
    ['[fd00::1', /bracketed IPv6 address must look like/],
    ['[fd00::1]11211', /bracketed IPv6 address must look like/],
    ['[10.0.0.1]:11211', /"10.0.0.1" is not an IPv6 address/],
    ['[fd00::1]:0', /the port "0" must be an integer/],
    ['admin:hunter2-secret@mycache', /^Invalid cache host: item 1 contains "@" \(credentials\?\)/],
    ['a,memcached://u:p%40ss@b:11211', /^Invalid cache host: item 2 contains "@"/],
  ])('rejects %j', (host, message) => {
    expect(() => parseHostSpec(host, 11211)).toThrow(K8sOptionsError);
    expect(() => parseHostSpec(host, 11211)).toThrow(message);
  });

  it('never echoes a host that carries credentials', () => {
    expect(() => parseHostSpec('admin:hunter2-secret@mycache', 11211)).not.toThrow(/hunter2/);
  });

  it('every rejection says what is expected', () => {
    expect(() => parseHostSpec('a,,b', 11211)).toThrow(/expected a DNS name, name:port, an IP/);
  });

  it.each([0, 65536, 1.5, Number.NaN])('rejects default port %s', (port) => {
    expect(() => parseHostSpec('a', port)).toThrow(/port .* expected an integer from 1 to 65535/);
  });
});
