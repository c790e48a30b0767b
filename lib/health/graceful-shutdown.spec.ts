import { describe, expect, it } from 'vitest';
import { K8sOptionsError } from '../errors/k8s.error.js';
import { resolveShutdownOptions } from './graceful-shutdown.js';

describe('resolveShutdownOptions', () => {
  it('waits 5 s in a pod and not at all elsewhere, drains 20 s, on SIGTERM and SIGINT, then exits', () => {
    expect(resolveShutdownOptions({}, { KUBERNETES_SERVICE_HOST: '10.0.0.1' })).toEqual({
      delayMs: 5000,
      drainTimeoutMs: 20_000,
      signals: ['SIGTERM', 'SIGINT'],
      exit: true,
    });
    expect(resolveShutdownOptions({}, {}).delayMs).toBe(0);
  });

  it('keeps what the caller gives, 0 included', () => {
    const given = { delayMs: 0, drainTimeoutMs: 0, signals: ['SIGUSR2'] as const, exit: false };
    expect(resolveShutdownOptions(given, { KUBERNETES_SERVICE_HOST: 'x' })).toEqual(given);
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])(
    'refuses %s ms with an error naming the option',
    (value) => {
      expect(() => resolveShutdownOptions({ delayMs: value })).toThrow(K8sOptionsError);
      expect(() => resolveShutdownOptions({ drainTimeoutMs: value })).toThrow(/drainTimeoutMs/);
    },
  );

  it('refuses an empty signal list', () => {
    expect(() => resolveShutdownOptions({ signals: [] })).toThrow(/at least one signal/);
  });
});
