import type { Registry } from 'prom-client';
import { K8sOptionsError } from '../errors/k8s.error.js';

/** Prometheus metric names: letters, digits, `_` and `:`, not starting with a digit. */
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** Throws unless `prefix` followed by `name` is a valid metric name. */
export function checkMetricPrefix(prefix: string, name: string): void {
  if (!METRIC_NAME.test(`${prefix}${name}`)) {
    throw new K8sOptionsError(
      `Invalid metrics prefix "${prefix}": use letters, digits, '_' and ':' (not starting with a digit)`,
    );
  }
}

/**
 * Throws unless none of `names` is registered on `registry`: `what` names the metrics and
 * `register` the function whose returned remover must run before registering again.
 */
export function checkMetricsUnregistered(
  registry: Registry,
  names: readonly string[],
  what: string,
  register: string,
): void {
  const taken = names.filter((name) => registry.getSingleMetric(name) !== undefined);
  if (taken.length > 0) {
    throw new K8sOptionsError(
      `${what} ${taken.join(', ')} are registered on this registry already: call the ` +
        `function the first ${register}() returned before registering again, or pass ` +
        'another prefix.',
    );
  }
}
