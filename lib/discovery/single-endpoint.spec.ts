import { describe, expect, it } from 'vitest';
import { K8sOptionsError } from '../errors/k8s.error.js';
import { endpointMember } from './single-endpoint.js';

describe('endpointMember', () => {
  it('is the endpoint as given: its name (resolved on each connection) or its IP', () => {
    expect(endpointMember('MyCache-abc123.serverless.use1.cache.amazonaws.com', 11211)).toEqual({
      host: 'mycache-abc123.serverless.use1.cache.amazonaws.com',
      port: 11211,
    });
    expect(endpointMember('mcrouter.caches.svc.cluster.local:5000', 11211)).toEqual({
      host: 'mcrouter.caches.svc.cluster.local',
      port: 5000,
    });
    expect(endpointMember('[fd00::9]:11311', 11211)).toEqual({ host: 'fd00::9', port: 11311 });
  });

  it.each(['a.example,b.example', '_memcache._tcp.proxy.example', 'proxy:0'])(
    'refuses %s',
    (host) => {
      expect(() => endpointMember(host, 11211)).toThrow(K8sOptionsError);
    },
  );
});
