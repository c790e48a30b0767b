import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startDnsServer } from '../support/dns-server.js';
import type { TestDnsServer } from '../support/dns-server.js';
import { exposedNames, parseExposition } from '../support/exposition.js';
import {
  freePort,
  memcachedAvailable,
  startMemcached,
  stopAllMemcached,
} from '../support/memcached.js';
import { prometheusAvailable, startPrometheus } from '../support/prometheus.js';
import type { TestPrometheus } from '../support/prometheus.js';
import { metricNames } from '../support/promql.js';
import { ROOT, runSample, startSample } from '../support/run-command.js';
import type { RunningCommand } from '../support/run-command.js';
import { scaled } from '../support/timing.js';
import { waitFor, waitForValue } from '../support/wait-for.js';

// The sample's /metrics, scraped by a real Prometheus (Debian's package) on loopback, with the
// alert rules of sample/prometheus loaded and the queries of the Grafana dashboard of
// sample/grafana run against it. This file's loopback range: 127.0.81.x.

const JOB = 'nestjs-k8s-sample';
const RULES = join(ROOT, 'sample', 'prometheus', 'nestjs-k8s.rules.yml');
const DASHBOARD = join(ROOT, 'sample', 'grafana', 'nestjs-k8s.dashboard.json');

interface Dashboard {
  panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }> }>;
  templating: { list: Array<{ name: string; type: string; query: unknown }> };
}
const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
/** Every query of the dashboard's panels, with its panel's title. */
const dashboardQueries = dashboard.panels.flatMap((p) =>
  (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })),
);
const ruleGroups = parse(readFileSync(RULES, 'utf8')) as {
  groups: Array<{ rules: Array<{ alert?: string; record?: string; expr: string }> }>;
};
const rules = ruleGroups.groups.flatMap((g) => g.rules);

/** A dashboard query as Grafana sends it: its variables set to this test's job, all pods. */
function asSent(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$job', JOB)
    .replaceAll('$instance', '.*');
}

/** Start the sample on a free port and wait until it listens. */
async function sample(env: Record<string, string>): Promise<{ app: RunningCommand; url: string }> {
  const port = await freePort('127.0.0.1');
  const app = startSample([], { env: { ...env, PORT: String(port) }, timeoutMs: 600_000 });
  await app.waitForOutput('Listening on port');
  return { app, url: `http://127.0.0.1:${port}` };
}

async function stopSample(app: RunningCommand | undefined): Promise<void> {
  if (!app || app.child.exitCode !== null) return;
  app.child.kill('SIGTERM');
  await app.result;
}

const text = async (url: string): Promise<string> => (await fetch(url)).text();

describe("the sample's /metrics", () => {
  let dir: string;
  let app: RunningCommand | undefined;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'k8s-sample-metrics-'));
  });
  afterAll(async () => {
    await stopSample(app);
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports the pending migrations its readiness checks found, then 0 once migrated', async () => {
    // A database the sample's migrations have not run on, and the in-memory cache.
    const env = { DATABASE_URL: join(dir, 'pending.sqlite'), CACHE_HOST: '' };
    const started = await sample(env);
    app = started.app;
    const pending = async () =>
      [...parseExposition(await text(`${started.url}/metrics`))].filter(([key]) =>
        key.startsWith('nestjs_k8s_migrations_pending{'),
      );
    // No check yet: no sample, rather than a 0 that would read as "migrated".
    expect(await pending()).toEqual([]);

    expect((await fetch(`${started.url}/health/ready`)).status).toBe(503);
    const seen = await pending();
    expect(seen).toHaveLength(1);
    const [[key, value]] = seen;
    expect(key).toMatch(/data_source="[^"]*pending\.sqlite"/);
    expect(value).toBe(2);
    // The in-memory cache has no members to count.
    expect(await text(`${started.url}/metrics`)).not.toContain('nestjs_k8s_cache_');

    expect((await runSample(['migrate'], { env })).code).toBe(0);
    // The indicator reuses a result for 5 s: poll readiness until a new check ran.
    await waitFor(
      'readiness once migrated',
      async () => (await fetch(`${started.url}/health/ready`)).status === 200,
      15_000,
    );
    expect(await pending()).toEqual([[key, 0]]);
  });
});

describe.runIf(memcachedAvailable() && prometheusAvailable())(
  'a real Prometheus scraping the sample',
  () => {
    let dir: string;
    let dns: TestDnsServer;
    let app: RunningCommand | undefined;
    let url: string;
    let prometheus: TestPrometheus | undefined;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'k8s-prometheus-e2e-'));
      dns = await startDnsServer();
      const port = await freePort('127.0.81.1');
      const servers = await Promise.all(
        [1, 2].map((i) => startMemcached({ host: `127.0.81.${i}`, port })),
      );
      dns.setA(
        'memcached.prometheus.local',
        servers.map((s) => s.host),
      );
      const env = {
        DATABASE_URL: join(dir, 'sample.sqlite'),
        CACHE_HOST: 'memcached.prometheus.local',
        CACHE_PORT: String(port),
        CACHE_DNS_SERVERS: dns.address,
        CACHE_REFRESH_INTERVAL: '1000',
      };
      expect((await runSample(['migrate'], { env })).code).toBe(0);
      const started = await sample(env);
      app = started.app;
      url = started.url;
      prometheus = await startPrometheus({
        job: JOB,
        targets: [new URL(url).host],
        ruleFiles: [RULES],
        scrapeInterval: '1s',
      });
      // Scraped before any traffic: rates then cover all of it.
      await waitForValue(
        'the first scrape of the sample',
        () => prometheus!.query(`nestjs_k8s_cache_members{job="${JOB}",state="ring"}`),
        (result) => result.length === 1 && result[0].value === 2,
        15_000,
      );
      // 40 squares computed and cached (misses), 30 of them asked again (hits).
      for (let n = 0; n < 40; n++) expect((await fetch(`${url}/square/${n}`)).status).toBe(200);
      for (let n = 0; n < 30; n++) expect((await fetch(`${url}/square/${n}`)).status).toBe(200);
      // One readiness check: what the migrations gauge reports.
      expect((await fetch(`${url}/health/ready`)).status).toBe(200);
    }, scaled(120_000));

    afterAll(async () => {
      await prometheus?.stop();
      await stopSample(app);
      await dns?.close();
      await stopAllMemcached();
      rmSync(dir, { recursive: true, force: true });
    });

    it("answers the hit ratio through PromQL, equal to the app's own counters", async () => {
      const sum = (samples: Map<string, number>, name: string): number =>
        [...samples].filter(([k]) => k.startsWith(`${name}{`)).reduce((a, [, v]) => a + v, 0);
      // Prometheus' latest scrape and the app's counters agree once it has scraped after the
      // traffic (and no generation reload moved them in between).
      const { hits, misses } = await waitForValue(
        'Prometheus to hold the final counters',
        async () => {
          const own = parseExposition(await text(`${url}/metrics`));
          const [scrapedHits] = await prometheus!.query(
            `sum(nestjs_k8s_cache_hits_total{job="${JOB}"})`,
          );
          const [scrapedMisses] = await prometheus!.query(
            `sum(nestjs_k8s_cache_misses_total{job="${JOB}"})`,
          );
          const hits = sum(own, 'nestjs_k8s_cache_hits_total');
          const misses = sum(own, 'nestjs_k8s_cache_misses_total');
          return {
            hits,
            misses,
            same: scrapedHits?.value === hits && scrapedMisses?.value === misses,
          };
        },
        (v) => v.same,
        15_000,
      );
      expect(hits).toBeGreaterThanOrEqual(30);
      expect(misses).toBeGreaterThanOrEqual(40);
      const selector = `{job="${JOB}"}`;
      const [ratio] = await prometheus!.query(
        `sum(nestjs_k8s_cache_hits_total${selector}) / (sum(nestjs_k8s_cache_hits_total${selector}) + sum(nestjs_k8s_cache_misses_total${selector}))`,
      );
      console.log(`hit ratio through PromQL: ${ratio.value} (hits ${hits}, misses ${misses})`);
      expect(ratio.value).toBeCloseTo(hits / (hits + misses), 12);

      // The dashboard's rate-based hit ratio over the traffic's window.
      const panel = dashboardQueries.find((q) => q.panel === 'Hit ratio')!;
      const [rated] = await prometheus!.query(asSent(panel.expr));
      console.log(`dashboard hit ratio (rate over 1m): ${rated.value}`);
      expect(rated.value).toBeGreaterThan(0);
      expect(rated.value).toBeLessThan(1);
    });

    it('evaluates every rule of sample/prometheus on the real series without error', async () => {
      const names = rules.map((r) => r.alert ?? r.record);
      const evaluated = await waitForValue(
        'every rule evaluated',
        () => prometheus!.rules(),
        (loaded) => loaded.length === names.length && loaded.every((r) => r.health !== 'unknown'),
        15_000,
      );
      expect(evaluated.map((r) => r.name).sort()).toEqual([...names].sort());
      for (const rule of evaluated) {
        expect({
          rule: rule.name,
          health: rule.health,
          error: rule.lastError || undefined,
        }).toEqual({ rule: rule.name, health: 'ok', error: undefined });
      }
      // The recording rule recorded the hit ratio of the traffic.
      await waitFor(
        'the recorded hit ratio',
        async () => (await prometheus!.query('nestjs_k8s:cache_hit_ratio:rate10m')).length === 1,
        15_000,
      );
    });

    it('the rules and the dashboard name only metrics the sample exports', async () => {
      const exported = exposedNames(await text(`${url}/metrics`));
      const recorded = new Set(rules.flatMap((r) => (r.record ? [r.record] : [])));
      const used = new Map<string, string>();
      for (const rule of rules) {
        for (const name of metricNames(rule.expr))
          used.set(name, `rule ${rule.alert ?? rule.record}`);
      }
      for (const { panel, expr } of dashboardQueries) {
        for (const name of metricNames(expr)) used.set(name, `panel ${panel}`);
      }
      for (const variable of dashboard.templating.list.filter((v) => v.type === 'query')) {
        const query = (variable.query as { query: string }).query;
        const [, name] = /^label_values\(([a-zA-Z_:][\w:]*)/.exec(query) ?? [];
        expect(name, `variable ${variable.name}`).toBeDefined();
        used.set(name, `variable ${variable.name}`);
      }
      // The histogram is named by its sample names (`_bucket`, `_sum`, `_count`), as exported.
      expect([...used.keys()]).toContain('nestjs_k8s_cache_command_duration_seconds_bucket');
      for (const [name, where] of used) {
        if (recorded.has(name)) continue;
        expect(exported.has(name), `${where} uses ${name}, which /metrics does not have`).toBe(
          true,
        );
      }
    });

    it('every query of the dashboard returns data from Prometheus', async () => {
      // What the traffic here never moves (no failure, no ring change, no replica, every value
      // right, migrated): these queries answer series of 0, every other one some series above 0.
      const idle = [
        'nestjs_k8s_cache_errors_total',
        'nestjs_k8s_cache_ejections_total',
        'nestjs_k8s_cache_readmissions_total',
        'nestjs_k8s_cache_key_mismatches_total',
        'nestjs_k8s_cache_warmup_copies_total',
        'nestjs_k8s_cache_replica_reads_total',
        'nestjs_k8s_migrations_pending',
      ];
      const zero: string[] = [];
      for (const { panel, expr } of dashboardQueries) {
        const result = await waitForValue(
          `data for "${panel}": ${expr}`,
          () => prometheus!.query(asSent(expr)),
          (r) => r.length > 0,
          15_000,
        );
        const stays = [...metricNames(expr)].some((name) => idle.includes(name));
        if (result.every((sample) => sample.value === 0)) zero.push(`${panel}: ${expr}`);
        if (!stays) {
          expect(
            result.some((sample) => sample.value > 0),
            `"${panel}" ${expr}: ${JSON.stringify(result)}`,
          ).toBe(true);
        }
      }
      console.log(`dashboard queries whose series are all 0 here:\n${zero.join('\n')}`);
    });
  },
);
