// One combination of the matrix: the documentation's example app (docs/example-app.md, the blocks
// as written) in a temporary directory shaped like `nest new`'s output for the combination's Nest
// line, installed with a plain `npm install`, compiled with `tsc`, its commands and HTTP routes run
// against real services. Every check gets a result; a check whose prerequisite failed is not run.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { memberStats } from '../../scripts/demo/members.js';
import {
  freePort,
  isRunning,
  runToEnd,
  signal,
  sleep,
  waitForPort,
} from '../../scripts/demo/processes.js';
import { exampleApp } from '../support/doc-app.mjs';
import { nodeBin, nodeVersion } from './node-versions.mjs';
import { createDatabase, startMembers } from './services.mjs';

const HERE = fileURLToPath(new URL('.', import.meta.url));
/** The example app's table and migration (docs/example-app.md). */
const TABLE = 'items';
const MIGRATION = 'CreateItems1733200000000';

/** The checks, in order: the table's columns. */
export const CHECKS = [
  'install',
  'tsc',
  'versions',
  'checkmigrations=1',
  'ready=503',
  'migrate=0',
  'ready=200',
  'checkmigrations=0',
  'interceptor',
  'spread',
  'degraded',
  'stop',
];

/**
 * Runs `combination`; resolves to `{ results: Map<check, { ok, detail }>, node, seconds, removal }`
 * (`removal`: the app directory's removal, still running).
 * `context`: `{ processes, tarball, subnet, keep, log(line) }`.
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

  // Each check: its function returns a detail string or throws; a failure stops the rest, except
  // for a check that none of the later ones depends on (`blocking: false`).
  let failed = false;
  const check = async (name, fn, { blocking = true } = {}) => {
    if (failed) return;
    const t0 = Date.now();
    try {
      const detail = (await fn()) ?? '';
      results.set(name, { ok: true, detail });
      log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s) ${detail}`);
    } catch (error) {
      if (blocking) failed = true;
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
    // The app is the documentation's blocks, as written: nothing of it is typed here.
    const files = exampleApp();
    for (const [path, code] of files) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), code);
    }
    const delayMs = shutdownDelay(files.get('src/main.ts'));

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
        { timeoutMs: 300_000 },
      );
      if (code !== 0) throw new Error(`tsc exited ${code}:\n${tail(output)}`);
      return `${files.size} files from the docs`;
    });
    await check('versions', () => versionsMatch(dir, combination.expect));

    database = await createDatabase();
    const members = await startMembers(context.processes, context.subnet);
    const appEnv = { DATABASE_URL: database.url, CACHE_HOST: members.servers.join(',') };
    // `node dist/main <command>`, as the docs' Job and init container run it.
    const command = async (args, expected, pattern) => {
      const { code, output } = await runNode(['dist/main', ...args], { extraEnv: appEnv });
      if (code !== expected || !pattern.test(output)) {
        throw new Error(`exit ${code} (expected ${expected}):\n${tail(output)}`);
      }
      return output.trim().split('\n').at(-1);
    };
    // The check only reads: it must not even create TypeORM's migrations table.
    await check('checkmigrations=1', async () => {
      const line = await command(['checkmigrations'], 1, new RegExp(`pending.*${MIGRATION}`, 'is'));
      const tables = await database.tables();
      if (tables.length) throw new Error(`checkmigrations wrote: tables ${tables.join(', ')}`);
      return line;
    });

    const port = await freePort('127.0.0.1');
    const base = `http://127.0.0.1:${port}`;
    const ready = () => getJson(`${base}/health/ready`, { anyStatus: true });
    // The app starts before the migration Job has run, as pods of a new release do.
    await check('ready=503', async () => {
      app = context.processes.start(join(bin, 'node'), ['dist/main'], {
        cwd: dir,
        env: { ...env, ...appEnv, PORT: String(port) },
      });
      await waitForPort('127.0.0.1', port, () => isRunning(app.child), 60_000).catch((error) => {
        throw new Error(`${error.message}\n${tail(app.output())}`);
      });
      const { status, body } = await ready();
      const migrations = body.details?.migrations;
      if (
        status !== 503 ||
        migrations?.status !== 'down' ||
        !migrations.pending?.includes(MIGRATION)
      ) {
        throw new Error(`readiness ${status} ${JSON.stringify(body)}`);
      }
      return `503, migrations down: pending ${migrations.pending.join(', ')}`;
    });
    await check('migrate=0', async () => {
      const line = await command(['migrate'], 0, new RegExp(`Applied 1 migration.*${MIGRATION}`));
      const tables = await database.tables();
      if (!tables.includes(TABLE)) throw new Error(`tables after migrate: ${tables}`);
      return line;
    });
    await check('ready=200', async () => {
      // The migrations indicator reuses a result for 5 s (its cacheTime): 200 comes by then.
      const t0 = Date.now();
      let last;
      while (Date.now() - t0 < 20_000) {
        last = await ready();
        if (last.status === 200) break;
        await sleep(250);
      }
      const { status, body } = last;
      const cache = body.details?.cache;
      if (status !== 200) throw new Error(`readiness still ${status} ${JSON.stringify(body)}`);
      if (JSON.stringify(cache?.members) !== JSON.stringify(members.servers)) {
        throw new Error(`cache members ${JSON.stringify(cache?.members)}, not ${members.servers}`);
      }
      const states = Object.entries(body.details)
        .map(([key, value]) => `${key} ${value.status}`)
        .join(', ');
      return `after ${((Date.now() - t0) / 1000).toFixed(1)} s: ${states}; ${cache.members.length} members`;
    });
    await check('checkmigrations=0', () =>
      command(['checkmigrations'], 0, /Migrations complete\./),
    );

    await check('interceptor', async () => {
      // Both cached routes read before a row is added behind the app's back, then again.
      const list = await getJson(`${base}/items`);
      const count = await getJson(`${base}/items/count`);
      await database.query(`INSERT INTO ${TABLE} (name) VALUES ($1)`, ['tea']);
      const listAgain = await getJson(`${base}/items`);
      const countAgain = await getJson(`${base}/items/count`);
      // Another URL is another key of the interceptor: the handler runs and sees the row.
      const fresh = await getJson(`${base}/items?after=insert`);
      if (fresh.body.length !== list.body.length + 1) {
        throw new Error(`the handler does not see the new row: ${JSON.stringify(fresh.body)}`);
      }
      if (JSON.stringify(listAgain.body) !== JSON.stringify(list.body)) {
        throw new Error(
          `GET /items did not come from the cache: ${JSON.stringify(listAgain.body)}`,
        );
      }
      if (countAgain.body !== count.body) {
        throw new Error(`wrap did not come from the cache: ${count.body}, then ${countAgain.body}`);
      }
      return `GET /items and /items/count (wrap) answered from memcached after a row was added`;
    });
    await check('spread', async () => {
      // 60 URLs, 60 keys of the interceptor: every member gets some (a member left without any
      // has a chance of (2/3)^60).
      for (let i = 0; i < 60; i++) await getJson(`${base}/items?spread=${i}`);
      const items = await Promise.all(
        members.hosts.map(async (host) => (await memberStats(host, members.port))?.curr_items),
      );
      if (!items.every((n) => Number(n) > 0)) {
        throw new Error(`items per member: ${items.join(', ')}`);
      }
      return `items per member ${items.join('/')}`;
    });
    await check(
      'degraded',
      async () => {
        await Promise.all(
          members.children.map(async (child) => {
            const exited = new Promise((resolve) => child.once('exit', resolve));
            signal(child, 'SIGKILL');
            await exited;
          }),
        );
        // The memcached indicator reuses a result for 1 s: the outage shows within a few.
        const t0 = Date.now();
        let last;
        while (Date.now() - t0 < 15_000) {
          last = await ready();
          if (last.body.details?.cache?.answering?.length === 0) break;
          await sleep(250);
        }
        const { status, body } = last;
        const cache = body.details?.cache;
        if (status !== 200 || !reportsDegraded(cache)) {
          throw new Error(
            `readiness ${status} with every member down: ${JSON.stringify(body)}\n${tail(app.output())}`,
          );
        }
        // A cache outage is a slower app, not a broken one: reads miss and the handler answers.
        const list = await getJson(`${base}/items?outage=1`);
        if (list.body.length !== 1)
          throw new Error(`GET /items answered ${JSON.stringify(list.body)}`);
        return `200, overall ${body.status}, cache ${JSON.stringify(degradedPart(cache))}; GET /items still 200`;
      },
      // The shutdown check does not depend on this one: it runs whatever this found.
      { blocking: false },
    );
    await check('stop', async () => {
      const exited = new Promise((resolve) =>
        app.child.once('exit', (code, sig) => resolve({ code, sig, at: performance.now() })),
      );
      const signalledAt = performance.now();
      signal(app.child, 'SIGTERM');
      // During the delay readiness fails while the app still serves.
      let during;
      while (performance.now() - signalledAt < delayMs / 2) {
        during = await ready();
        if (during.status === 503) break;
        await sleep(50);
      }
      const shutdown = during.body.details?.shutdown;
      if (during.status !== 503 || shutdown?.status !== 'down') {
        throw new Error(`readiness after SIGTERM: ${during.status} ${JSON.stringify(during.body)}`);
      }
      const readyAt = performance.now() - signalledAt;
      const live = await getJson(`${base}/health/live`);
      const servedAt = performance.now() - signalledAt;
      const timeout = sleep(delayMs + 15_000).then(() => undefined);
      const end = await Promise.race([exited, timeout]);
      if (!end) throw new Error(`still running ${delayMs + 15_000} ms after SIGTERM`);
      const took = end.at - signalledAt;
      if (end.code !== 0) {
        throw new Error(`exit ${end.code ?? end.sig} after SIGTERM:\n${tail(app.output())}`);
      }
      if (took < delayMs)
        throw new Error(
          `exited ${took.toFixed(0)} ms after SIGTERM, before its ${delayMs} ms delay`,
        );
      return (
        `readiness 503 (${shutdown.signal ?? 'shutdown'}) at +${(readyAt / 1000).toFixed(1)} s, ` +
        `/health/live ${live.status} at +${(servedAt / 1000).toFixed(1)} s, ` +
        `exit 0 at +${(took / 1000).toFixed(1)} s (delay ${delayMs / 1000} s)`
      );
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

/** GET `url` as JSON: `{ status, body }`; a status other than 200 throws unless `anyStatus`. */
async function getJson(url, { anyStatus = false } = {}) {
  const response = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  const text = await response.text();
  if (!anyStatus && response.status !== 200) {
    throw new Error(`GET ${url}: ${response.status} ${text}`);
  }
  return { status: response.status, body: JSON.parse(text) };
}

/** The delay the docs' main.ts gives `enableGracefulShutdown` (`delayMs: 5_000`), in ms. */
function shutdownDelay(mainTs) {
  const match = /delayMs: ([\d_]+)/.exec(mainTs ?? '');
  if (!match) throw new Error("the docs' src/main.ts passes no delayMs to enableGracefulShutdown");
  return Number(match[1].replaceAll('_', ''));
}

/**
 * The memcached indicator's answer with no member answering: `degraded` on Terminus 12; on
 * Terminus 11, which has no such status, `up` with `degraded: true` in its detail.
 */
function reportsDegraded(cache) {
  return cache?.status === 'degraded' || (cache?.status === 'up' && cache.degraded === true);
}

const degradedPart = (cache) => ({
  status: cache.status,
  ...(cache.degraded !== undefined && { degraded: cache.degraded }),
  answering: cache.answering,
});

/**
 * The installed versions are the combination's (a resolution surprise would test something else),
 * and tsc emitted the module system the combination stands for.
 */
function versionsMatch(dir, expect) {
  const version = (name) =>
    JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')).version;
  const main = readFileSync(join(dir, 'dist/main.js'), 'utf8');
  const module = /\brequire\(/.test(main) ? 'commonjs' : 'esm';
  const problems = [];
  if (module !== expect.module) problems.push(`tsc emitted ${module}`);
  const wanted = [
    ['@nestjs/core', expect.nest],
    ['@nestjs/cache-manager', expect.cacheManager],
    ['@nestjs/terminus', expect.terminus],
    ['typeorm', expect.typeorm],
  ];
  // A prefix of whole parts: '11' matches 11.2.10, '0.3.20' matches only 0.3.20.
  for (const [name, prefix] of wanted) {
    if (!`${version(name)}.`.startsWith(`${prefix}.`)) {
      problems.push(`${name} ${version(name)} (wanted ${prefix})`);
    }
  }
  if (problems.length) throw new Error(`unexpected: ${problems.join(', ')}`);
  const names = [...wanted.map(([name]) => name), '@nestjs/typeorm', 'keyv'];
  return `${module}, ${names.map((name) => `${name} ${version(name)}`).join(', ')}`;
}

const tail = (text) => text.trim().split('\n').slice(-25).join('\n');
