import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { promtoolAvailable } from '../support/prometheus.js';
import { ROOT } from '../support/run-command.js';

// sample/prometheus: the alert rules checked and unit-tested by promtool (Debian's `prometheus`
// package), and the PrometheusRule manifest held to the same groups. No services needed; the
// rules against a real Prometheus and the sample's live metrics: prometheus.e2e-spec.ts.

const DIR = join(ROOT, 'sample', 'prometheus');
const RULES = 'nestjs-k8s.rules.yml';
const TESTS = 'nestjs-k8s.rules.test.yml';

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleGroups {
  groups: Array<{ name: string; rules: Rule[] }>;
}
interface RuleTests {
  rule_files: string[];
  tests: Array<{
    alert_rule_test?: Array<{ alertname: string; eval_time: string; exp_alerts: unknown[] }>;
  }>;
}

const rules = parse(readFileSync(join(DIR, RULES), 'utf8')) as RuleGroups;
const alerts = rules.groups.flatMap((g) => g.rules).filter((r) => r.alert !== undefined);

function promtool(args: string[], cwd = DIR): { code: number | null; output: string } {
  const run = spawnSync('promtool', args, { cwd, encoding: 'utf8', timeout: 60_000 });
  return { code: run.status, output: `${run.stdout}${run.stderr}` };
}

describe('the alert rules', () => {
  it('name the alerts an operator needs, each with a severity, a summary and a description', () => {
    expect(alerts.map((a) => a.alert).sort()).toEqual(
      [
        'NestjsK8sCacheDiscoveryFailing',
        'NestjsK8sCacheHitRatioFalling',
        'NestjsK8sCacheKeyMismatches',
        'NestjsK8sCacheMemberFlapping',
        'NestjsK8sCacheMembersLost',
        'NestjsK8sCacheRingEmpty',
        'NestjsK8sMigrationsPending',
      ].sort(),
    );
    for (const alert of alerts) {
      expect(['warning', 'critical'], alert.alert).toContain(alert.labels?.severity);
      expect(alert.annotations?.summary, alert.alert).toBeTruthy();
      expect(alert.annotations?.description, alert.alert).toBeTruthy();
    }
  });

  it('every alert has a unit test where it fires and one where it stays quiet', () => {
    const tests = parse(readFileSync(join(DIR, TESTS), 'utf8')) as RuleTests;
    expect(tests.rule_files).toEqual([RULES]);
    const evaluations = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const { alert } of alerts) {
      const of = evaluations.filter((e) => e.alertname === alert);
      expect(
        of.some((e) => e.exp_alerts.length > 0),
        `${alert} never fires`,
      ).toBe(true);
      expect(
        of.some((e) => e.exp_alerts.length === 0),
        `${alert} is never quiet`,
      ).toBe(true);
    }
  });

  describe.runIf(promtoolAvailable())('promtool', () => {
    it('check rules: valid', () => {
      const { code, output } = promtool(['check', 'rules', RULES]);
      expect(output).toContain(
        `SUCCESS: ${rules.groups.flatMap((g) => g.rules).length} rules found`,
      );
      expect(code).toBe(0);
    });

    it('test rules: every unit test passes', () => {
      const { code, output } = promtool(['test', 'rules', TESTS]);
      console.log(output.trim());
      expect(output).toContain('SUCCESS');
      expect(code).toBe(0);
    });

    it('test rules fails when an alert is broken (the tests can fail)', () => {
      // The same tests against rules whose ejection threshold moved from 3 to 5: the flapping
      // member of the tests (4 ejections) no longer fires.
      const dir = mkdtempSync(join(tmpdir(), 'k8s-rules-'));
      try {
        copyFileSync(join(DIR, TESTS), join(dir, TESTS));
        const text = readFileSync(join(DIR, RULES), 'utf8');
        const broken = text.replace('[30m])) >= 3', '[30m])) >= 5');
        expect(broken).not.toBe(text);
        writeFileSync(join(dir, RULES), broken);
        const { code, output } = promtool(['test', 'rules', TESTS], dir);
        expect(output).toContain('alertname: NestjsK8sCacheMemberFlapping');
        expect(code).not.toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

describe('the PrometheusRule manifest', () => {
  const manifest = parse(readFileSync(join(DIR, 'prometheus-rule.yaml'), 'utf8')) as {
    apiVersion: string;
    kind: string;
    metadata: { name: string };
    spec: RuleGroups;
  };

  it('is valid against the Prometheus Operator schema', () => {
    expect(manifest.kind).toBe('PrometheusRule');
    expect(() => new PrometheusRule(manifest as never).validate()).not.toThrow();
    // The schema catches a mistake: a `for` that is not a duration.
    const broken = structuredClone(manifest);
    broken.spec.groups[0].rules[1].for = 'two minutes';
    expect(() => new PrometheusRule(broken as never).validate()).toThrow(/for must match pattern/);
  });

  it('holds the groups of the rules file, word for word', () => {
    expect(manifest.spec).toEqual(rules);
  });
});
