// One combination of the matrix: a throwaway app in a temporary directory, installed with a
// plain `npm install`, compiled with `tsc`, its commands and HTTP routes run against real
// services. Every check gets a result; a check whose prerequisite failed is not run.
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { memberStats } from '../../scripts/demo/members.js';
import {
  freePort,
  isRunning,
  runToEnd,
  signal,
  waitForPort,
} from '../../scripts/demo/processes.js';
import { nodeBin, nodeVersion } from './node-versions.mjs';
import { createDatabase, startMembers } from './services.mjs';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const CACHE_NAME = 'memcached.compat.test';

/** The checks, in order: the table's columns. */
export const CHECKS = [
  'install',
  'tsc',
  'checkmigrations=1',
  'migrate=0',
  'checkmigrations=0',
  'versions',
  'discovery',
  'spread',
  'interceptor',
  'ready',
  'stop',
];

/**
 * Runs `combination`; resolves to `{ results: Map<check, { ok, detail }>, node, seconds, removal }`
 * (`removal`: the app directory's removal, still running).
 * `context`: `{ processes, dns, tarball, subnet, keep, log(line) }`.
 */
export async function runCombination(combination, context) {
  const started = Date.now();
  const results = new Map();
  const dir = mkdtempSync(join(tmpdir(), `k8s-compat-${combination.id}-`));
  const bin = nodeBin(combination.node);
  const node = nodeVersion(bin);
  const env = {
    ...process.env,
    PATH: `${bin}:${process.env.PATH}`,
    // The app's npm must see this Node: engine checks and native builds are for it.
    npm_config_update_notifier: 'false',
  };
  const log = (line) => context.log(`[${combination.id}] ${line}`);
  let database;
  let app;

  // Each check: its function returns a detail string or throws; a failure stops the rest.
  let failed = false;
  const check = async (name, fn) => {
    if (failed) return;
    const t0 = Date.now();
    try {
      const detail = (await fn()) ?? '';
      results.set(name, { ok: true, detail });
      log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s) ${detail}`);
    } catch (error) {
      failed = true;
      results.set(name, { ok: false, detail: error.message });
      log(`FAIL ${name}: ${error.message}`);
    }
  };
  const run = async (command, args, { timeoutMs = 60_000, extraEnv = {} } = {}) =>
    runToEnd(
      context.processes,
      command,
      args,
      { cwd: dir, env: { ...env, ...extraEnv } },
      timeoutMs,
    );
  const runNode = (args, options) => run(join(bin, 'node'), args, options);
  const npmInstall = async (args) => {
    const { code, output } = await run(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', ...args],
      { timeoutMs: 600_000 },
    );
    // Any warning that names us is a failure: an ERESOLVE override, a peer or engine warning.
    const ours = output.split('\n').filter((l) => /\bwarn\b/i.test(l) && /nestjs-k8s/.test(l));
    if (code !== 0) throw new Error(`npm install exited ${code}:\n${tail(output)}`);
    if (ours.length) throw new Error(`npm warns about nestjs-k8s:\n${ours.join('\n')}`);
    return output.split('\n').filter((l) => /^npm warn/i.test(l));
  };

  try {
    log(`Node ${node}, in ${dir}`);
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify(
        {
          name: `compat-${combination.id}`,
          version: '0.0.1',
          private: true,
          ...(combination.app.type && { type: combination.app.type }),
          scripts: { build: 'tsc -p tsconfig.build.json', 'start:prod': 'node dist/main' },
          dependencies: combination.app.dependencies,
          devDependencies: combination.app.devDependencies,
        },
        null,
        2,
      ),
    );
    cpSync(join(HERE, 'templates', combination.template), dir, { recursive: true });
    cpSync(join(HERE, 'app/src'), join(dir, 'src'), { recursive: true });

    await check('install', async () => {
      // The app as `nest new` leaves it, then the README's install line: two plain installs.
      const before = await npmInstall([]);
      const warnings = await npmInstall([context.tarball, ...combination.install]);
      const other = [...before, ...warnings].filter((l) => /peer|ERESOLVE/i.test(l)).length;
      return other ? `${other} peer warnings not about nestjs-k8s` : 'no peer warnings';
    });
    await check('tsc', async () => {
      const { code, output } = await runNode(
        ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'],
        {
          timeoutMs: 300_000,
        },
      );
      if (code !== 0) throw new Error(`tsc exited ${code}:\n${tail(output)}`);
    });

    database = await createDatabase();
    const members = await startMembers(context.processes, context.dns, CACHE_NAME, context.subnet);
    const appEnv = {
      DATABASE_URL: database.url,
      CACHE_HOST: CACHE_NAME,
      CACHE_PORT: String(members.port),
      CACHE_DNS_SERVERS: context.dns.address,
    };
    const command = async (args, expected, pattern) => {
      const { code, output } = await runNode(['dist/main.js', ...args], { extraEnv: appEnv });
      if (code !== expected || !pattern.test(output)) {
        throw new Error(`exit ${code} (expected ${expected}):\n${tail(output)}`);
      }
      return output.trim().split('\n').at(-1);
    };
    // The check only reads: it must not even create TypeORM's migrations table.
    await check('checkmigrations=1', async () => {
      const line = await command(['checkmigrations'], 1, /pending/i);
      const tables = await database.tables();
      if (tables.length) throw new Error(`checkmigrations wrote: tables ${tables.join(', ')}`);
      return line;
    });
    await check('migrate=0', async () => {
      const line = await command(['migrate'], 0, /./s);
      const tables = await database.tables();
      if (!tables.includes('compat_notes')) throw new Error(`tables after migrate: ${tables}`);
      return line;
    });
    await check('checkmigrations=0', () =>
      command(['checkmigrations'], 0, /Migrations complete\./),
    );

    const port = await freePort('127.0.0.1');
    const base = `http://127.0.0.1:${port}`;
    if (!failed) {
      app = context.processes.start(join(bin, 'node'), ['dist/main.js'], {
        cwd: dir,
        env: { ...env, ...appEnv, PORT: String(port) },
      });
      await check('versions', async () => {
        await waitForPort('127.0.0.1', port, () => isRunning(app.child), 60_000).catch((error) => {
          throw new Error(`${error.message}\n${tail(app.output())}`);
        });
        return versionsMatch(await getJson(`${base}/info`), combination.expect, node);
      });
    }
    await check('discovery', async () => {
      const servers = await getJson(`${base}/cache/servers`);
      if (JSON.stringify(servers) !== JSON.stringify(members.servers)) {
        throw new Error(
          `servers() is ${JSON.stringify(servers)}, expected ${JSON.stringify(members.servers)}`,
        );
      }
      return `${servers.length} members from ${CACHE_NAME}`;
    });
    await check('spread', async () => {
      const fill = await getJson(`${base}/cache/fill/90`);
      if (fill.readBack !== fill.written)
        throw new Error(`read back ${fill.readBack} of ${fill.written}`);
      const items = await Promise.all(
        members.hosts.map(async (host) => (await memberStats(host, members.port))?.curr_items),
      );
      if (!items.every((n) => Number(n) > 0))
        throw new Error(`items per member: ${items.join(', ')}`);
      return `items per member ${items.join('/')}`;
    });
    await check('interceptor', async () => {
      const first = await getJson(`${base}/counter`);
      const second = await getJson(`${base}/counter`);
      if (first.count !== 1 || second.count !== 1) {
        throw new Error(
          `counter answered ${first.count} then ${second.count}; the second must come from the cache`,
        );
      }
      return 'second request from the cache';
    });
    await check('ready', async () => {
      const response = await fetch(`${base}/health/ready`);
      const body = await response.json();
      if (response.status !== 200) throw new Error(`${response.status} ${JSON.stringify(body)}`);
      return Object.entries(body.info ?? {})
        .map(([key, value]) => `${key} ${value.status}`)
        .join(', ');
    });
    await check('stop', async () => {
      const exited = new Promise((resolve) =>
        app.child.once('exit', (code, sig) => resolve(sig ?? code)),
      );
      signal(app.child, 'SIGTERM');
      const timeout = new Promise((resolve) =>
        setTimeout(() => resolve('timeout'), 15_000).unref(),
      );
      const how = await Promise.race([exited, timeout]);
      if (how === 'timeout') throw new Error('still running 15 s after SIGTERM');
      return `exited (${how})`;
    });
  } catch (error) {
    // A failure outside a check (services, file system): reported on the first check not run.
    const name = CHECKS.find((c) => !results.has(c));
    results.set(name ?? 'stop', { ok: false, detail: error.message });
    log(`FAIL: ${error.stack}`);
  } finally {
    if (app) signal(app.child, 'SIGKILL');
    await database?.drop().catch((error) => log(`could not drop the database: ${error.message}`));
  }
  const seconds = (Date.now() - started) / 1000;
  // Removing node_modules takes a while: it goes on while the next combination runs.
  let removal = Promise.resolve();
  if (context.keep || [...results.values()].some((r) => !r.ok)) log(`app kept in ${dir}`);
  else removal = rm(dir, { recursive: true, force: true });
  return { results, node, seconds, removal };
}

async function getJson(url) {
  const response = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  const text = await response.text();
  if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${text}`);
  return JSON.parse(text);
}

/** The installed versions are the combination's: a resolution surprise would test something else. */
function versionsMatch(info, expect, node) {
  const problems = [];
  if (info.node !== node) problems.push(`node ${info.node}`);
  if (info.module !== expect.module) problems.push(`module ${info.module}`);
  const wanted = [
    ['@nestjs/core', info.nest, expect.nest],
    ['@nestjs/cache-manager', info.cacheManager, expect.cacheManager],
    ['@nestjs/terminus', info.terminus, expect.terminus],
    ['typeorm', info.typeorm, expect.typeorm],
  ];
  // A prefix of whole parts: '11' matches 11.2.10, '0.3.20' matches only 0.3.20.
  for (const [name, actual, prefix] of wanted) {
    if (!`${actual}.`.startsWith(`${prefix}.`))
      problems.push(`${name} ${actual} (wanted ${prefix})`);
  }
  if (problems.length) throw new Error(`unexpected: ${problems.join(', ')}`);
  return `${info.module}, @nestjs/core ${info.nest}, @nestjs/cache-manager ${info.cacheManager}, @nestjs/terminus ${info.terminus}, typeorm ${info.typeorm}, @nestjs/typeorm ${info.nestTypeorm}, keyv ${info.keyv}`;
}

const tail = (text) => text.trim().split('\n').slice(-25).join('\n');
