import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockPath, typescriptBlocks } from '../support/doc-app.mjs';
import type { TypescriptBlock } from '../support/doc-app.mjs';
import { compileDocsProject, writeDocsProject } from '../support/docs-project.js';
import { memcachedAvailable, startMemcached, stopAllMemcached } from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { listedByIp, startDiscoveryEndpoint } from '../support/memorystore-endpoint.js';
import { findBinary, serviceAvailable } from '../support/services.js';
import { makeTestCertificates } from '../support/test-certificates.js';
import { scaled } from '../support/timing.js';

// This file's loopback range: 127.0.81.x, and 127.0.0.1 for the ElastiCache Serverless snippet,
// whose stand-in endpoint is reached by name (`localhost`: the system resolver's only name here).
// The documentation's snippets, its TypeScript blocks
// outside the example app (which `npm run test:compat` runs), compiled as written into a
// CommonJS project against the installed package and run, each by a harness that holds what the
// docs leave to the reader: the services the snippet talks to, and what to look at. A snippet
// that names a host of its own (`mycache-memcached`, an ElastiCache endpoint) meets a name that
// does not resolve here: it must still start, serve and stop, as the docs promise of a cache
// without members.

// Made when a test of this file runs (a filtered run skips the hooks), removed afterwards.
let dir: string;
let memcached: MemcachedProcess;

/** The snippets, each by its document and a pattern only its code matches; a test runs each. */
const SNIPPETS = {
  metrics: ['docs/cache.md', /export class MetricsModule/],
  config: ['docs/cache.md', /K8sModule\.forRootAsync/],
  before: ['docs/cache.md', /CacheModule\.register/],
  after: ['docs/cache.md', /host: 'mycache-memcached'/],
  store: ['docs/cache.md', /export async function demo/],
  interceptor: ['docs/cache.md', /export class PricesController/],
  kubernetes: ['docs/deploying-memcached.md', /host: 'memcached',/],
  compose: ['docs/deploying-memcached.md', /CACHE_REFRESH_INTERVAL/],
  elasticache: ['docs/deploying-memcached.md', /discovery: 'elasticache'/],
  serverless: ['docs/deploying-memcached.md', /discovery: 'endpoint'/],
  memorystore: ['docs/deploying-memcached.md', /discovery: 'memorystore'/],
  migrateOnBoot: ['docs/migrations.md', /class MigrateOnBoot/],
  schemaReady: ['docs/migrations.md', /export async function schemaReady/],
  tracer: ['docs/migrations.md', /const tracer: CommandTracer/],
} satisfies Record<string, [string, RegExp]>;

const opensslAvailable = () =>
  serviceAvailable('openssl', findBinary('openssl') !== undefined, 'apt-get install openssl');

/** Where a block's compiled module is, for `require` from the project's directory. */
const compiled = (block: TypescriptBlock): string =>
  `./dist/${blockPath(block)
    .replace(/^src\//, '')
    .replace(/\.ts$/, '.js')}`;

/** The compiled module of a snippet of SNIPPETS (exactly one block must match). */
function snippet(name: keyof typeof SNIPPETS): string {
  const [doc, pattern] = SNIPPETS[name];
  const found = typescriptBlocks().filter((b) => b.doc === doc && !b.file && pattern.test(b.code));
  expect(
    found.map((b) => `${b.doc}:${b.line}`),
    `${name}: ${doc} ${pattern}`,
  ).toHaveLength(1);
  return compiled(found[0]);
}

interface Run {
  code: number | null;
  output: string;
  /** The JSON the harness printed after `RESULT `. */
  result: Record<string, unknown> | undefined;
}

/** Runs a CommonJS `harness` in the project with `args` and `env`; resolves once it exits. */
async function run(
  name: string,
  harness: string,
  { args = [], env = {} }: { args?: string[]; env?: Record<string, string> } = {},
): Promise<Run> {
  const file = join(dir, `${name}.cjs`);
  writeFileSync(file, harness);
  const child = spawn(process.execPath, [file, ...args], {
    cwd: dir,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), scaled(30_000));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  const line = /^RESULT (.*)$/m.exec(output)?.[1];
  return { code, output, result: line ? JSON.parse(line) : undefined };
}

/** Expects the harness to have ended well and returns its result. */
function resultOf(done: Run): Record<string, unknown> {
  expect(done.code, done.output).toBe(0);
  expect(done.result, done.output).toBeDefined();
  return done.result as Record<string, unknown>;
}

const BOOT = `
const { NestFactory } = require('@nestjs/core');
const { CacheService } = require('nestjs-k8s');
const report = (result) => console.log('RESULT ' + JSON.stringify(result));
`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'k8s-docs-snippets-'));
  const files = writeDocsProject(dir, 'commonjs');
  compileDocsProject(dir, files, { emit: true });
  if (memcachedAvailable()) memcached = await startMemcached({ host: '127.0.81.1' });
}, scaled(180_000));

afterAll(async () => {
  await stopAllMemcached();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.runIf(memcachedAvailable())('the snippets of docs/cache.md', () => {
  it('MetricsModule serves the cache metrics on /metrics', async () => {
    const module = snippet('metrics');
    const done = await run(
      'metrics',
      `${BOOT}
const { Test } = require('@nestjs/testing');
const { K8sModule } = require('nestjs-k8s');
const { MetricsModule } = require(${JSON.stringify(module)});
(async () => {
  const ref = await Test.createTestingModule({
    imports: [K8sModule.forRoot({ isGlobal: true, cache: { host: process.env.MEMBER } }), MetricsModule],
  }).compile();
  const app = ref.createNestApplication({ logger: false });
  await app.listen(0, '127.0.0.1');
  const response = await fetch(\`\${await app.getUrl()}/metrics\`);
  const text = await response.text();
  await app.close();
  report({ status: response.status, type: response.headers.get('content-type'),
    ring: /^nestjs_k8s_cache_members\\{state="ring"\\} 1$/m.test(text) });
})();`,
      { env: { MEMBER: memcached.id } },
    );
    expect(resultOf(done)).toEqual({
      status: 200,
      type: expect.stringMatching(/^text\/plain/),
      ring: true,
    });
  });

  it('the forRootAsync AppModule reads its options from the environment, and rejects a non-number', async () => {
    const module = snippet('config');
    const harness = `${BOOT}
const { AppModule } = require(${JSON.stringify(module)});
(async () => {
  const app = await NestFactory.createApplicationContext(AppModule);
  const cache = app.get(CacheService);
  await cache.set('greeting', 'hello');
  report({ value: await cache.get('greeting'), servers: cache.servers() });
  await app.close();
})();`;
    const env = { CACHE_HOST: memcached.id, CACHE_NAMESPACE: 'docs', CACHE_LOCAL_TTL: '2000' };
    expect(resultOf(await run('config', harness, { env }))).toEqual({
      value: 'hello',
      servers: [memcached.id],
    });
    // Start-up fails with the error the page quotes, word for word.
    const bad = await run('config-bad', harness, { env: { ...env, CACHE_TTL: 'soon' } });
    expect(bad.code, bad.output).toBe(1);
    expect(bad.result, bad.output).toBeUndefined();
    expect(bad.output).toContain(
      'K8sOptionsError: cache.ttl must be an integer from 0 to 2147483647, got NaN.',
    );
  });

  it('the AppModules before and after the move from @keyv/memcache start, serve and stop', async () => {
    const before = snippet('before');
    const after = snippet('after');
    const harness = (module: string) => `${BOOT}
const { CACHE_MANAGER } = require('@nestjs/cache-manager');
const { AppModule } = require(${JSON.stringify(module)});
(async () => {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  const cache = app.get(CACHE_MANAGER);
  report({ started: typeof cache.get === 'function' });
  await app.close();
  process.exit(0); // @keyv/memcache has no disconnect: its users end the process themselves
})();`;
    expect(resultOf(await run('before', harness(before)))).toEqual({ started: true });
    // No member resolves: reads and writes still resolve (a cache without members is not an error).
    const done = await run(
      'after',
      `${BOOT}
const { AppModule } = require(${JSON.stringify(after)});
(async () => {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  const cache = app.get(CacheService);
  await cache.set('greeting', 'hello');
  await cache.get('greeting');
  report({ served: true, servers: cache.servers() });
  await app.close();
})();`,
    );
    expect(resultOf(done)).toEqual({ served: true, servers: [] });
  });

  it('the PricesController runs its handler once for concurrent requests in two pods', async () => {
    const module = snippet('interceptor');
    const done = await run(
      'interceptor',
      `${BOOT}
const { Test } = require('@nestjs/testing');
const { K8sModule } = require('nestjs-k8s');
const { PricesController } = require(${JSON.stringify(module)});
(async () => {
  // The handler is the snippet's; it is counted through the prototype it was defined on.
  let runs = 0;
  const list = PricesController.prototype.list;
  const counted = async function () {
    runs++;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    return list.call(this);
  };
  // Nest's route and cache decorators keep their metadata on the method itself.
  for (const key of Reflect.getMetadataKeys(list)) {
    Reflect.defineMetadata(key, Reflect.getMetadata(key, list), counted);
  }
  PricesController.prototype.list = counted;
  const pod = async () => {
    const ref = await Test.createTestingModule({
      imports: [K8sModule.forRoot({ isGlobal: true, cache: { host: process.env.MEMBER, namespace: 'prices' } })],
      controllers: [PricesController],
    }).compile();
    const app = ref.createNestApplication({ logger: false });
    await app.listen(0, '127.0.0.1');
    await app.get(CacheService).get('warm-up');
    return app;
  };
  const apps = [await pod(), await pod()];
  const urls = await Promise.all(apps.map(async (app) => \`\${await app.getUrl()}/prices\`));
  const answers = await Promise.all([...urls, ...urls].map(async (url) => (await fetch(url)).json()));
  const again = await fetch(urls[1]);
  report({ runs, answers, cache: again.headers.get('x-cache') });
  await Promise.all(apps.map((app) => app.close()));
})();`,
      { env: { MEMBER: memcached.id } },
    );
    expect(resultOf(done)).toEqual({ runs: 1, answers: Array(4).fill(['…']), cache: 'HIT' });
  });

  it('MemcachedStore without Nest runs and disconnects (no member resolves here)', async () => {
    const module = snippet('store');
    const done = await run(
      'store',
      `${BOOT}
const { demo } = require(${JSON.stringify(module)});
demo().then(() => report({ done: true }));`,
    );
    // It returned, and the process ended by itself: disconnect() left nothing open.
    expect(resultOf(done)).toEqual({ done: true });
  });
});

/** Starts the snippet's AppModule, writes and reads one key, reports the value and servers(). */
const SERVE = (module: string) => `${BOOT}
const { AppModule } = require(${JSON.stringify(module)});
(async () => {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  const cache = app.get(CacheService);
  await cache.set('greeting', 'hello');
  report({ value: (await cache.get('greeting')) ?? null, servers: cache.servers() });
  await app.close();
})();`;

describe('the snippets of docs/deploying-memcached.md', () => {
  it('the Kubernetes AppModule starts, serves and stops while its Service name does not resolve', async () => {
    const done = await run('kubernetes', SERVE(snippet('kubernetes')));
    // No member here: the write is dropped and the read misses, without an error.
    expect(resultOf(done)).toEqual({ value: null, servers: [] });
  });

  it.runIf(memcachedAvailable())(
    'the Docker Compose AppModule finds the members of the service name in CACHE_HOST',
    async () => {
      const done = await run('compose', SERVE(snippet('compose')), {
        env: { CACHE_HOST: memcached.id, CACHE_REFRESH_INTERVAL: '5000' },
      });
      expect(resultOf(done)).toEqual({ value: 'hello', servers: [memcached.id] });
    },
  );

  it.runIf(memcachedAvailable() && opensslAvailable())(
    'the ElastiCache Serverless AppModule reaches a TLS endpoint by name, trusting the system CAs',
    async () => {
      const certs = makeTestCertificates({ dnsNames: ['localhost'] });
      try {
        const tlsArgs = ['-Z', '-o', `ssl_chain_cert=${certs.certFile},ssl_key=${certs.keyFile}`];
        const endpoint = await startMemcached({
          host: '127.0.0.1',
          args: tlsArgs,
          tls: { ca: certs.ca, servername: 'localhost' },
        });
        // `tls: true` trusts the system CAs: the test CA joins them as an operator's CA would.
        const caFile = join(dir, 'serverless-ca.pem');
        writeFileSync(caFile, certs.ca);
        const done = await run('serverless', SERVE(snippet('serverless')), {
          env: { CACHE_HOST: `localhost:${endpoint.port}`, NODE_EXTRA_CA_CERTS: caFile },
        });
        expect(resultOf(done)).toEqual({ value: 'hello', servers: [`localhost:${endpoint.port}`] });
        expect(Number((await endpoint.stats()).cmd_set)).toBeGreaterThan(0);
      } finally {
        certs.remove();
      }
    },
  );

  it.runIf(memcachedAvailable())(
    "the Memorystore AppModule follows a discovery endpoint (Google's format, simulated) to its node",
    async () => {
      const discovery = await startDiscoveryEndpoint({ host: '127.0.81.2' });
      try {
        discovery.setNodes([listedByIp(memcached)]);
        const done = await run('memorystore', SERVE(snippet('memorystore')), {
          env: { CACHE_HOST: discovery.address },
        });
        expect(resultOf(done)).toEqual({ value: 'hello', servers: [memcached.id] });
        expect(discovery.requests('config')).toBeGreaterThan(0);
        expect([discovery.requests('get'), discovery.requests('other')]).toEqual([0, 0]);
      } finally {
        await discovery.close();
      }
    },
  );

  it('the ElastiCache AppModule starts with no node while its endpoint does not resolve', async () => {
    const module = snippet('elasticache');
    const done = await run(
      'elasticache',
      `${BOOT}
const { AppModule } = require(${JSON.stringify(module)});
(async () => {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  const cache = app.get(CacheService);
  report({ servers: cache.servers() });
  await app.close();
})();`,
    );
    expect(resultOf(done)).toEqual({ servers: [] });
  });
});

describe('the snippets of docs/migrations.md', () => {
  const MIGRATION = `
class CreateThings1700000000000 {
  constructor() { this.name = 'CreateThings1700000000000'; }
  async up(q) { await q.query('CREATE TABLE things (id integer)'); }
  async down(q) { await q.query('DROP TABLE things'); }
}`;

  it('MigrateOnBoot applies the pending migration at start-up, once', async () => {
    const module = snippet('migrateOnBoot');
    const harness = `${BOOT}
const { Module } = require('@nestjs/common');
const { TypeOrmModule } = require('@nestjs/typeorm');
const { MigrateOnBoot } = require(${JSON.stringify(module)});
${MIGRATION}
class Root {}
Module({
  imports: [TypeOrmModule.forRoot({ type: 'better-sqlite3', database: process.env.DB,
    migrations: [CreateThings1700000000000] })],
  providers: [MigrateOnBoot],
})(Root);
(async () => {
  const lines = [];
  const logger = { log: (m) => lines.push(String(m)), error: () => {}, warn: () => {} };
  const app = await NestFactory.createApplicationContext(Root, { logger });
  await app.close();
  report({ lines: lines.filter((l) => /Applied|No migration/.test(l)) });
})();`;
    const env = { DB: join(dir, 'boot.sqlite') };
    expect(resultOf(await run('boot', harness, { env }))).toEqual({
      lines: ['Applied CreateThings1700000000000'],
    });
    expect(resultOf(await run('boot-again', harness, { env }))).toEqual({
      lines: ['No migration pending'],
    });
  });

  it('schemaReady is false while a migration is pending, true once applied', async () => {
    const module = snippet('schemaReady');
    const done = await run(
      'schema-ready',
      `${BOOT}
const { DataSource } = require('typeorm');
const { schemaReady } = require(${JSON.stringify(module)});
${MIGRATION}
(async () => {
  const dataSource = new DataSource({ type: 'better-sqlite3', database: process.env.DB,
    migrations: [CreateThings1700000000000] });
  await dataSource.initialize();
  const before = await schemaReady(dataSource);
  await dataSource.runMigrations();
  const after = await schemaReady(dataSource);
  await dataSource.destroy();
  report({ before, after });
})();`,
      { env: { DB: join(dir, 'ready.sqlite') } },
    );
    expect(resultOf(done)).toEqual({ before: false, after: true });
  });

  it('the tracer sees each checkmigrations attempt and its outcome', async () => {
    const module = snippet('tracer');
    // The example app's database options (the snippet imports them), aimed at a closed port.
    const done = await run(
      'tracer',
      `const { commands } = require(${JSON.stringify(module)});
commands();`,
      {
        args: ['checkmigrations'],
        env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:9/none' },
      },
    );
    expect(done.code, done.output).toBe(1);
    expect(done.output).toMatch(/^checkmigrations #1: not-ready in \d+ ms$/m);
    expect(done.output).toMatch(/^Not ready: database unreachable/m);
  });
});

describe('every snippet', () => {
  it('is one of those the tests above run', () => {
    const snippets = typescriptBlocks().filter((b) => !b.file);
    const run = Object.keys(SNIPPETS).map((name) => snippet(name as keyof typeof SNIPPETS));
    expect(snippets.map(compiled).sort()).toEqual(run.sort());
  });
});
