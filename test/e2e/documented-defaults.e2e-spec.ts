import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE_MANAGER } from '@nestjs/cache-manager';
import { Test } from '@nestjs/testing';
import type { Cache } from 'cache-manager';
import { describe, expect, it } from 'vitest';
import { K8sModule } from 'nestjs-k8s';
import { resolveCacheOptions } from '../../lib/options/cache-options.js';
import { resolveShutdownOptions } from '../../lib/health/graceful-shutdown.js';
import { MEMCACHED_HEALTH_TIMEOUT_MS } from '../../lib/health/memcached.health.js';
import { MIGRATIONS_HEALTH_TIMEOUT_MS } from '../../lib/health/migrations.health.js';
import { ROOT } from '../support/run-command.js';

// The defaults users read (the options tables of docs/ and the options' TSDoc `@default`) against
// what the code does with an option left out: a changed default turns this red until the docs
// say it too. Values are read from the text, never from the code's constants.

const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8');

/** `| \`name\` | default | …` rows of the first table under `heading` in `file`: name → default cell. */
function optionTable(file: string, heading: string): Map<string, string> {
  const text = read(file);
  const start = text.indexOf(heading);
  if (start < 0) throw new Error(`${file} has no "${heading}"`);
  const rows = new Map<string, string>();
  let inTable = false;
  for (const line of text.slice(start).split('\n').slice(1)) {
    if (!line.startsWith('|')) {
      if (inTable) break;
      continue;
    }
    inTable = true;
    const cells = line.split('|').map((cell) => cell.trim());
    const name = /^`(\w+)`$/.exec(cells[1] ?? '')?.[1];
    if (name) rows.set(name, cells[2] ?? '');
  }
  return rows;
}

/** `@default` of each property of `interfaceName` in `file` (its TSDoc text after the tag). */
function tsdocDefaults(file: string, interfaceName: string): Map<string, string> {
  const text = read(file);
  const start = text.indexOf(`export interface ${interfaceName} `);
  if (start < 0) throw new Error(`${file} has no interface ${interfaceName}`);
  const body = text.slice(start, text.indexOf('\n}', start));
  const defaults = new Map<string, string>();
  for (const match of body.matchAll(
    /@default ([^\n]*?)\s*(?:\*\/)?\n(?:\s*\*\/\n)?\s*(\w+)\??:/g,
  )) {
    defaults.set(match[2]!, match[1]!.trim());
  }
  return defaults;
}

/**
 * A documented default as a value: the first backticked or bare literal (number, quoted string,
 * boolean); `unset`/`undefined` (with any explanation after it) as undefined. Anything else
 * (a formula, a sentence) is returned as `{ text }` for the caller to check by itself.
 */
function documentedValue(text: string): unknown {
  const literal = /^`?([^`(]+?)`?(?:\s*\(.*\))?$/.exec(text.trim())?.[1]?.trim() ?? text;
  if (/^(unset|undefined)\b/.test(literal)) return undefined;
  if (/^-?\d+$/.test(literal)) return Number(literal);
  if (literal === 'true' || literal === 'false') return literal === 'true';
  const quoted = /^'([^']*)'$/.exec(literal);
  if (quoted) return quoted[1];
  return { text };
}

const CACHE_TABLE = optionTable('docs/cache.md', '## Options');
const CACHE_TSDOC = tsdocDefaults('lib/options/k8s-options.interface.ts', 'K8sCacheOptions');
// Decided where the store is built (whether @opentelemetry/api is installed), or by Keyv: checked
// by the telemetry tests and the namespace test below.
const NOT_RESOLVED_HERE = new Set(['telemetry', 'namespace', 'warmupPeriod']);

describe('documented cache defaults', () => {
  it('lists every option of K8sCacheOptions in the docs table and the TSDoc', () => {
    expect([...CACHE_TABLE.keys()].sort()).toEqual([...CACHE_TSDOC.keys()].sort());
    expect(CACHE_TABLE.size).toBeGreaterThan(20);
  });

  it.each([...CACHE_TABLE].filter(([name]) => !NOT_RESOLVED_HERE.has(name)))(
    '%s: an unset option resolves to the documented default',
    (name, cell) => {
      const documented = documentedValue(cell);
      expect(documented, `docs/cache.md default of ${name}`).not.toEqual({ text: cell });
      expect(documentedValue(CACHE_TSDOC.get(name) ?? ''), `TSDoc @default of ${name}`).toEqual(
        documented,
      );
      const resolved = resolveCacheOptions({}) as unknown as Record<string, unknown>;
      // Booleans documented `false` for tls are resolved as "no TLS options".
      const actual = name === 'tls' && resolved.tls === undefined ? false : resolved[name];
      expect(actual).toEqual(documented);
    },
  );

  it('warmupPeriod: 2 × refreshInterval, 60000 when refreshInterval is 0', () => {
    expect(CACHE_TABLE.get('warmupPeriod')).toContain('2 × refreshInterval');
    expect(CACHE_TSDOC.get('warmupPeriod')).toBe(
      '2 × refreshInterval (60000 when refreshInterval is 0)',
    );
    expect(resolveCacheOptions({}).warmupPeriod).toBe(2 * resolveCacheOptions({}).refreshInterval);
    expect(resolveCacheOptions({ refreshInterval: 7_000 }).warmupPeriod).toBe(14_000);
    expect(resolveCacheOptions({ refreshInterval: 0 }).warmupPeriod).toBe(60_000);
  });

  it('local: { max, ttl } default to the documented 1000 entries and 5000 ms', () => {
    const meaning = read('docs/cache.md')
      .split('\n')
      .find((line) => line.startsWith('| `local`'));
    const max = Number(/`max` entries \(default `(\d+)`\)/.exec(meaning ?? '')?.[1]);
    const ttl = Number(/`ttl` ms \(default `(\d+)`\)/.exec(meaning ?? '')?.[1]);
    expect([max, ttl]).toEqual([1000, 5000]);
    expect(resolveCacheOptions({ local: {} }).local).toEqual({ max, ttl });
  });

  it("namespace: the module's Keyv uses the documented 'keyv' when none is given", async () => {
    const documented = documentedValue(CACHE_TABLE.get('namespace') ?? '');
    expect(documented).toBe(documentedValue(CACHE_TSDOC.get('namespace') ?? ''));
    const moduleRef = await Test.createTestingModule({
      imports: [K8sModule.forRoot({ cache: {} })],
    }).compile();
    try {
      const cache = moduleRef.get<Cache>(CACHE_MANAGER);
      expect(cache.stores.map((store) => store.namespace)).toEqual([documented]);
    } finally {
      await moduleRef.close();
    }
  });
});

describe('documented health and shutdown defaults', () => {
  const file = 'docs/health-and-shutdown.md';

  it('enableGracefulShutdown: delayMs, drainTimeoutMs, signals and exit as the table says', () => {
    const table = optionTable(file, '| option           | default');
    const inPod = /^`(\d+)` in a pod \(`KUBERNETES_SERVICE_HOST` set\), else `(\d+)`$/.exec(
      table.get('delayMs') ?? '',
    );
    expect(inPod).not.toBeNull();
    expect(resolveShutdownOptions({}, { KUBERNETES_SERVICE_HOST: '10.0.0.1' }).delayMs).toBe(
      Number(inPod![1]),
    );
    const outside = resolveShutdownOptions({}, {});
    expect(outside.delayMs).toBe(Number(inPod![2]));
    expect(outside.drainTimeoutMs).toBe(documentedValue(table.get('drainTimeoutMs') ?? ''));
    expect(outside.exit).toBe(documentedValue(table.get('exit') ?? ''));
    expect(JSON.stringify(outside.signals)).toBe(
      (table.get('signals') ?? '').replace(/`/g, '').replace(/'/g, '"').replace(/, /g, ','),
    );
  });

  it('the memcached and migrations indicators time out after the documented defaults', () => {
    const tables = read(file).split('| option ').slice(1);
    const timeouts = tables
      .map((table) => /\| `timeout`\s*\| `(\d+)`/.exec(table)?.[1])
      .filter((value) => value !== undefined)
      .map(Number);
    expect(timeouts).toEqual([MEMCACHED_HEALTH_TIMEOUT_MS, MIGRATIONS_HEALTH_TIMEOUT_MS]);
  });
});
