import { describe, expect, it } from 'vitest';
import { SINGLE_ADDRESS_LOOKUPS, SingleAddressWatch } from './single-address-warning.js';

const SERVICE = 'mycache-memcached.default.svc.cluster.local';
const SPAN = 30_000;

/** Feed `answers` one lookup every `every` ms; returns the warnings, by lookup index. */
function feed(
  watch: SingleAddressWatch,
  name: string,
  answers: ReadonlyArray<readonly string[]>,
  every: number,
) {
  const warnings: Array<[number, string]> = [];
  answers.forEach((addresses, i) => {
    const warning = watch.observe(name, addresses, 1_000_000 + i * every);
    if (warning !== undefined) warnings.push([i, warning]);
  });
  return warnings;
}

describe('SingleAddressWatch', () => {
  it(`warns once, at the ${SINGLE_ADDRESS_LOOKUPS}rd lookup answering one address over a refresh interval`, () => {
    const watch = new SingleAddressWatch({ minSpanMs: SPAN, env: {} });
    const warnings = feed(watch, SERVICE, Array(10).fill(['10.96.0.12']), SPAN / 2);
    // Lookups 0, 1, 2 span one interval: the third one meets both conditions.
    expect(warnings.map(([i]) => i)).toEqual([2]);
    expect(warnings[0][1]).toMatch(/resolved to one address \(10\.96\.0\.12\) in 3 lookups/);
    expect(warnings[0][1]).toMatch(/ClusterIP Service/);
    expect(warnings[0][1]).toMatch(/clusterIP: None/);
    expect(warnings[0][1]).toMatch(
      /--set architecture=high-availability --set service\.clusterIP=None/,
    );
  });

  it('waits for the span even after many quick lookups (failure-triggered ones)', () => {
    const watch = new SingleAddressWatch({ minSpanMs: SPAN, env: {} });
    const warnings = feed(watch, SERVICE, Array(40).fill(['10.96.0.12']), 1_000);
    expect(warnings.map(([i]) => i)).toEqual([30]);
  });

  it('starts over when the answer has several addresses or another address', () => {
    const watch = new SingleAddressWatch({ minSpanMs: SPAN, env: {} });
    const one = ['10.1.0.1'];
    const warnings = feed(
      watch,
      SERVICE,
      [one, one, ['10.1.0.1', '10.1.0.2'], one, one, ['10.1.0.9'], one, one, one],
      SPAN,
    );
    // Only the last three in a row count: a pod rolled (new IP) or a second one became ready.
    expect(warnings.map(([i]) => i)).toEqual([8]);
  });

  it('never warns for several addresses (a headless Service)', () => {
    const watch = new SingleAddressWatch({ minSpanMs: 0, env: {} });
    const control = feed(watch, 'other.ns.svc', Array(3).fill(['10.1.0.1']), 0);
    expect(control).toHaveLength(1); // the same watch does warn for a single address
    expect(feed(watch, SERVICE, Array(10).fill(['10.1.0.1', '10.1.0.2']), SPAN)).toEqual([]);
  });

  it('judges short names as Kubernetes names only inside a pod', () => {
    const answers = Array(3).fill(['10.96.0.12']);
    const outside = new SingleAddressWatch({ minSpanMs: 0, env: {} });
    expect(feed(outside, 'memcached', answers, 0)).toEqual([]); // Docker Compose, one replica
    expect(feed(outside, 'cache.example.com', answers, 0)).toEqual([]);
    const inPod = new SingleAddressWatch({
      minSpanMs: 0,
      env: { KUBERNETES_SERVICE_HOST: '10.96.0.1' },
    });
    expect(feed(inPod, 'mycache-memcached', answers, 0)).toHaveLength(1);
    expect(feed(inPod, 'mycache-memcached.cache', answers, 0)).toHaveLength(1);
    expect(feed(inPod, 'cache.example.com', answers, 0)).toEqual([]);
  });
});
