import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './memcached.js';
import { findBinary, serviceAvailable } from './services.js';
import { waitFor } from './wait-for.js';

// Debian's `prometheus` package (2.42 here) brings both binaries; .ci/run installs it.

const HINT = 'apt-get install prometheus (Debian: the server and promtool)';

/** True when `promtool` is on PATH; under CI a missing one throws. */
export function promtoolAvailable(): boolean {
  return serviceAvailable('promtool', findBinary('promtool') !== undefined, HINT);
}

/** True when the `prometheus` server is on PATH; under CI a missing one throws. */
export function prometheusAvailable(): boolean {
  return serviceAvailable('prometheus', findBinary('prometheus') !== undefined, HINT);
}

/** One series of an instant query's answer. */
export interface InstantSample {
  metric: Record<string, string>;
  value: number;
}

/** A Prometheus server a test started. */
export interface TestPrometheus {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** `GET /api/v1/query?query=…` now; throws with Prometheus' error when the query fails. */
  query(expr: string): Promise<InstantSample[]>;
  /** `GET /api/v1/rules`: every rule with its evaluation health and last error. */
  rules(): Promise<Array<{ name: string; type: string; health: string; lastError?: string }>>;
  /** Stop it (SIGTERM, SIGKILL after 5 s) and remove its data directory. */
  stop(): Promise<void>;
}

/**
 * Start `prometheus` on 127.0.0.1 and a free port, with its own data directory, scraping
 * `/metrics` of `targets` (`host:port`) every `scrapeInterval` as job `job`, and evaluating
 * `ruleFiles` as often; resolves once it answers ready.
 */
export async function startPrometheus(options: {
  job: string;
  targets: readonly string[];
  ruleFiles?: readonly string[];
  scrapeInterval?: string;
}): Promise<TestPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'k8s-prometheus-'));
  const interval = options.scrapeInterval ?? '1s';
  const config = {
    global: { scrape_interval: interval, evaluation_interval: interval },
    rule_files: options.ruleFiles ?? [],
    scrape_configs: [{ job_name: options.job, static_configs: [{ targets: options.targets }] }],
  };
  // JSON is YAML: no serializer needed.
  writeFileSync(join(dir, 'prometheus.yml'), JSON.stringify(config, null, 2));
  const port = await freePort('127.0.0.1');
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    findBinary('prometheus')!,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      `prometheus on ${url} to be ready`,
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited: ${stderr.trim()}`);
        return (await fetch(`${url}/-/ready`).catch(() => undefined))?.ok === true;
      },
      20_000,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  const api = async <T>(path: string): Promise<T> => {
    const response = await fetch(`${url}${path}`);
    const body = (await response.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${path}: ${body.error}`);
    return body.data;
  };
  return {
    url,
    async query(expr) {
      const data = await api<{
        result: Array<{ metric: Record<string, string>; value: [number, string] }>;
      }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
      return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
    },
    async rules() {
      const data = await api<{
        groups: Array<{
          rules: Array<{ name: string; type: string; health: string; lastError?: string }>;
        }>;
      }>('/api/v1/rules');
      return data.groups.flatMap((g) => g.rules);
    },
    stop,
  };
}
