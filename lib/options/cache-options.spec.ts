import { describe, expect, it } from 'vitest';
import { K8sOptionsError } from '../errors/k8s.error.js';
import { resolveCacheOptions } from './cache-options.js';

describe('resolveCacheOptions', () => {
  // The default values themselves are checked against docs/cache.md and the TSDoc
  // (test/e2e/documented-defaults.e2e-spec.ts), not against the constants the code reads.
  it('keeps host unset for the in-memory store', () => {
    expect(resolveCacheOptions({}).host).toBeUndefined();
    expect(resolveCacheOptions(undefined).host).toBeUndefined();
    expect(resolveCacheOptions({ host: '' }).host).toBeUndefined();
  });

  it('keeps what the user set', () => {
    const resolved = resolveCacheOptions({
      host: 'mycache-memcached.default.svc.cluster.local',
      port: 11311,
      dnsServers: ['127.0.0.1:5353', '::1', '[::1]:53'],
      refreshInterval: 0,
      namespace: 'app',
    });
    expect(resolved).toMatchObject({ port: 11311, refreshInterval: 0, namespace: 'app' });
    expect(resolved.dnsServers).toEqual(['127.0.0.1:5353', '::1', '[::1]:53']);
  });

  it('turns tls into tls.connect options that always check certificates', () => {
    expect(resolveCacheOptions({}).tls).toBeUndefined();
    expect(resolveCacheOptions({ tls: false }).tls).toBeUndefined();
    expect(resolveCacheOptions({ tls: true }).tls).toEqual({ rejectUnauthorized: true });
    expect(resolveCacheOptions({ tls: { servername: 'mycache-memcached' } }).tls).toEqual({
      servername: 'mycache-memcached',
      rejectUnauthorized: true,
    });
    expect(resolveCacheOptions({ tls: { rejectUnauthorized: false } }).tls).toEqual({
      rejectUnauthorized: false,
    });
  });

  it('defaults warmupPeriod to two refresh intervals (60 s without refresh) and replicas to 1', () => {
    expect(resolveCacheOptions({}).warmupPeriod).toBe(60_000);
    expect(resolveCacheOptions({ refreshInterval: 5_000 }).warmupPeriod).toBe(10_000);
    expect(resolveCacheOptions({ refreshInterval: 0 }).warmupPeriod).toBe(60_000);
    expect(resolveCacheOptions({ refreshInterval: 2_000_000_000 }).warmupPeriod).toBe(
      2_147_483_647,
    );
    expect(resolveCacheOptions({ warmupPeriod: 0 }).warmupPeriod).toBe(0);
    expect(resolveCacheOptions({}).replicas).toBe(1);
    expect(resolveCacheOptions({ replicas: 5 }).replicas).toBe(5);
  });

  it('resolves the CacheModule.register options: refreshThreshold, nonBlocking and the local tier', () => {
    const defaults = resolveCacheOptions({});
    expect(defaults).toMatchObject({ refreshThreshold: 0, nonBlocking: false });
    expect(defaults.local).toBeUndefined();
    const resolved = resolveCacheOptions({
      ttl: 60_000,
      refreshThreshold: 10_000,
      nonBlocking: true,
      local: { ttl: 2_000 },
    });
    expect(resolved).toMatchObject({ ttl: 60_000, refreshThreshold: 10_000, nonBlocking: true });
    expect(resolved.local).toEqual({ max: 1_000, ttl: 2_000 });
    expect(resolveCacheOptions({ local: {} }).local).toEqual({ max: 1_000, ttl: 5_000 });
    // A threshold with no module ttl applies to wrap calls that give their own ttl.
    expect(resolveCacheOptions({ refreshThreshold: 500 }).refreshThreshold).toBe(500);
  });

  it.each([
    [
      { ttl: 1_000, refreshThreshold: 1_000 },
      /cache\.refreshThreshold \(1000 ms\) must be less than cache\.ttl \(1000 ms\)/,
    ],
    [{ refreshThreshold: -1 }, /cache\.refreshThreshold must be an integer from 0/],
    [{ nonBlocking: 'true' }, /cache\.nonBlocking must be true or false, got "true"/],
    [{ local: true }, /cache\.local must be an object \{ max, ttl \}/],
    [{ local: null }, /cache\.local must be an object/],
    [{ local: { max: 0 } }, /cache\.local\.max must be an integer from 1 to 10000000, got 0/],
    [{ local: { ttl: '5s' } }, /cache\.local\.ttl must be an integer from 1 .*got "5s"/],
    [{ local: { ttl: 0 } }, /cache\.local\.ttl must be an integer from 1/],
    [{ warmupPeriod: -1 }, /cache\.warmupPeriod must be an integer from 0 \(warm-up off\)/],
    [{ warmupPeriod: 1.5 }, /cache\.warmupPeriod/],
    [{ warmupPeriod: '10s' }, /cache\.warmupPeriod .*got "10s"/],
    [{ replicas: 0 }, /cache\.replicas must be an integer from 1 to 5, got 0/],
    [{ replicas: 6 }, /cache\.replicas must be an integer from 1 to 5/],
    [{ replicas: 2.5 }, /cache\.replicas/],
    [
      { refreshInterval: -1 },
      /cache\.refreshInterval must be an integer from 0 to 2147483647, got -1/,
    ],
    [{ refreshInterval: 3e9 }, /cache\.refreshInterval must be an integer from 0 to 2147483647/],
    [{ lookupTimeout: 2 ** 31 }, /cache\.lookupTimeout/],
    [{ generationCacheTime: -1 }, /cache\.generationCacheTime/],
    [{ connectTimeout: 60_001 }, /cache\.connectTimeout must be an integer from 1 to 60000/],
    [{ port: 0 }, /cache\.port must be an integer from 1 to 65535/],
    [{ port: 70000 }, /cache\.port must be an integer from 1 to 65535/],
    [{ ttl: 1.5 }, /cache\.ttl must be an integer/],
    [{ ttl: Number('60s') }, /cache\.ttl must be an integer from 0 to 2147483647, got NaN/],
    [{ commandTimeout: Number.NaN }, /cache\.commandTimeout/],
    [{ maxConnections: '4' }, /cache\.maxConnections must be an integer from 1 to 1000, got "4"/],
    [{ host: 'bad host name' }, /bad host name/],
    [{ host: 'cache:99999' }, /99999/],
    [{ host: 42 }, /cache\.host must be a string/],
    [{ dnsServers: [] }, /cache\.dnsServers must be a non-empty array/],
    [
      { dnsServers: ['dns.example'] },
      /Invalid cache dnsServers \["dns\.example"\]: expected IP addresses/,
    ],
    [{ dnsServers: [42] }, /Invalid cache dnsServers/],
    [{ namespace: '' }, /cache\.namespace must be a non-empty string/],
    [{ noDelay: 'yes' }, /cache\.noDelay must be true or false, got "yes"/],
    [{ collectTimings: 1 }, /cache\.collectTimings must be true or false, got 1/],
    [{ tls: 'yes' }, /cache\.tls must be true, false or an object/],
    [{ tls: { host: '10.0.0.1' } }, /cache\.tls\.host cannot be set/],
    [{ tls: { port: 11211 } }, /cache\.tls\.port cannot be set/],
    [{ tls: { servername: '10.0.0.1' } }, /cache\.tls\.servername must be a DNS name/],
    [{ tls: { servername: '' } }, /cache\.tls\.servername/],
    [{ tls: { rejectUnauthorized: 'no' } }, /cache\.tls\.rejectUnauthorized must be true or false/],
    [{ tls: { ca: '/etc/ssl/ca.pem' } }, /cache\.tls\.ca must hold PEM certificates/],
    [{ tls: { cert: 'not a certificate' } }, /cache\.tls is not usable/],
    [{ tls: { key: 'not a key' } }, /cache\.tls is not usable/],
  ])('rejects %j with a message naming the option', (options, message) => {
    expect(() => resolveCacheOptions(options as never)).toThrow(K8sOptionsError);
    expect(() => resolveCacheOptions(options as never)).toThrow(message);
  });
});

describe('cache.discovery', () => {
  it("checks host as a configuration endpoint when discovery is 'elasticache', and only then", () => {
    expect(resolveCacheOptions({ host: 'a.example,b.example' }).discovery).toBe('dns');
    expect(() =>
      resolveCacheOptions({ host: 'a.example,b.example', discovery: 'elasticache' }),
    ).toThrow(/with discovery 'elasticache'/);
    expect(
      resolveCacheOptions({ host: 'cfg.example:11311', discovery: 'elasticache' }),
    ).toMatchObject({
      host: 'cfg.example:11311',
      discovery: 'elasticache',
    });
  });

  it('refuses an unknown discovery kind, listing the known ones', () => {
    expect(() => resolveCacheOptions({ host: 'a', discovery: 'consul' as 'dns' })).toThrow(
      /cache\.discovery must be 'dns', 'elasticache', 'memorystore', 'endpoint', got "consul"/,
    );
  });

  it("takes one discovery endpoint with discovery 'memorystore'", () => {
    expect(resolveCacheOptions({ host: '10.0.0.7:11211', discovery: 'memorystore' })).toMatchObject(
      { host: '10.0.0.7:11211', discovery: 'memorystore' },
    );
    expect(() =>
      resolveCacheOptions({ host: '10.0.0.7,10.0.0.8', discovery: 'memorystore' }),
    ).toThrow(/with discovery 'memorystore': give the instance's discovery endpoint alone/);
  });
});

describe("cache.discovery: 'endpoint'", () => {
  const SERVERLESS = 'mycache-abc123.serverless.use1.cache.amazonaws.com';

  it('takes one endpoint, name[:port] or ip[:port]', () => {
    expect(resolveCacheOptions({ host: 'mcrouter:5000', discovery: 'endpoint' })).toMatchObject({
      host: 'mcrouter:5000',
      discovery: 'endpoint',
    });
    expect(resolveCacheOptions({ host: '10.0.0.9', discovery: 'endpoint' }).host).toBe('10.0.0.9');
  });

  it.each([
    [{ host: 'a.example,b.example' }, /with discovery 'endpoint': give one endpoint alone/],
    [{ host: '_memcache._tcp.proxy.example' }, /with discovery 'endpoint': give one endpoint/],
    [
      { host: 'proxy', replicas: 2 },
      /cache\.replicas \(2\) cannot be used with discovery 'endpoint'/,
    ],
    [{ host: 'proxy', failureLimit: 5 }, /cache\.failureLimit cannot be used .* never ejected/],
    [{ host: 'proxy', retryTimeout: 1_000 }, /cache\.retryTimeout cannot be used/],
    [{ host: 'proxy', dnsServers: ['10.0.0.10'] }, /cache\.dnsServers cannot be used/],
    [
      { host: `${SERVERLESS}:11211` },
      /ElastiCache Serverless endpoint, which accepts TLS connections only: set cache\.tls: true/,
    ],
  ])('refuses %j with a message saying what to do', (options, message) => {
    const all = { ...options, discovery: 'endpoint' as const };
    expect(() => resolveCacheOptions(all)).toThrow(K8sOptionsError);
    expect(() => resolveCacheOptions(all)).toThrow(message);
  });

  it("checks the certificate against the endpoint's name (servername), unless told another", () => {
    const serverless = resolveCacheOptions({ host: SERVERLESS, discovery: 'endpoint', tls: true });
    expect(serverless.tls).toEqual({ rejectUnauthorized: true, servername: SERVERLESS });
    const given = resolveCacheOptions({
      host: SERVERLESS,
      discovery: 'endpoint',
      tls: { servername: 'proxy.internal' },
    });
    expect(given.tls?.servername).toBe('proxy.internal');
    // An IP carries no name to send: the certificate is checked against the IP.
    expect(
      resolveCacheOptions({ host: '10.0.0.9', discovery: 'endpoint', tls: true }).tls?.servername,
    ).toBeUndefined();
    // Only in endpoint mode: DNS members are checked against their IP.
    expect(resolveCacheOptions({ host: 'proxy', tls: true }).tls?.servername).toBeUndefined();
  });

  it('resolves the same when resolved again (as the module hands its options to the store)', () => {
    const once = resolveCacheOptions({ host: SERVERLESS, discovery: 'endpoint', tls: true });
    expect(resolveCacheOptions(once)).toEqual(once);
  });
});

describe('cache.telemetry', () => {
  it.each([
    ['yes', /cache\.telemetry must be true, false or an object/],
    [{ recordKey: true }, /cache\.telemetry\.recordKey is not an option/],
    [{ recordKeys: 'yes' }, /cache\.telemetry\.recordKeys must be true or false, got "yes"/],
  ])('refuses %j when the cache options are resolved', (value, message) => {
    expect(() => resolveCacheOptions({ telemetry: value as unknown as boolean })).toThrow(
      K8sOptionsError,
    );
    expect(() => resolveCacheOptions({ telemetry: value as unknown as boolean })).toThrow(message);
  });

  it('passes the option through unchanged, so resolving again gives the same', () => {
    const once = resolveCacheOptions({ telemetry: { recordKeys: true } });
    expect(once.telemetry).toEqual({ recordKeys: true });
    expect(resolveCacheOptions(once).telemetry).toEqual({ recordKeys: true });
    expect(resolveCacheOptions({}).telemetry).toBeUndefined();
  });
});
