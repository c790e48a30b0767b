import { describe, expect, it } from 'vitest';
import { K8sOptionsError } from '../errors/k8s.error.js';
import { parseConfigEndpoint } from './elasticache-discovery.js';

describe('the configuration endpoint option', () => {
  it('takes name[:port] or ip[:port], port default 11211', () => {
    expect(parseConfigEndpoint('mycluster.abc123.cfg.use1.cache.amazonaws.com', 11211)).toEqual({
      kind: 'name',
      name: 'mycluster.abc123.cfg.use1.cache.amazonaws.com',
      port: 11211,
    });
    expect(parseConfigEndpoint('10.0.0.5:11311', 11211)).toEqual({
      kind: 'ip',
      host: '10.0.0.5',
      port: 11311,
    });
  });

  it.each([
    ['a comma list', 'a.example,b.example'],
    ['an SRV name', '_memcache._tcp.mycluster.example'],
  ])('refuses %s, naming the expected form', (_, host) => {
    expect(() => parseConfigEndpoint(host, 11211)).toThrow(K8sOptionsError);
    expect(() => parseConfigEndpoint(host, 11211)).toThrow(
      /configuration endpoint alone, as name\[:port\]/,
    );
  });
});
