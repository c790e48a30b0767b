import { K8sOptionsError } from '../errors/k8s.error.js';

/** `cache.telemetry` as an object: what the cache reports through OpenTelemetry. */
export interface K8sTelemetryOptions {
  /** One CLIENT span per command sent to a memcached member. @default true */
  traces?: boolean;
  /** `db.client.operation.duration` and the pool's counters through the global meter. @default true */
  metrics?: boolean;
  /**
   * Record the keys of each command as `db.query.text` (`get <key> …`; values never). Keys can
   * carry user data (e-mail addresses, tokens): turn on only where traces may hold them.
   * @default false
   */
  recordKeys?: boolean;
}

/** `cache.telemetry` resolved: false when off. `explicit`: asked for, not the default. */
export type ResolvedTelemetryOptions =
  false | (Required<K8sTelemetryOptions> & { readonly explicit: boolean });

const FIELDS = ['traces', 'metrics', 'recordKeys'] as const;

/**
 * Checks `cache.telemetry` and applies defaults: unset is on (when `@opentelemetry/api` is
 * installed), `false` off, `true` or an object on.
 */
export function resolveTelemetryOptions(value: unknown): ResolvedTelemetryOptions {
  if (value === false) return false;
  const resolved = {
    traces: true,
    metrics: true,
    recordKeys: false,
    explicit: value !== undefined,
  };
  if (value === undefined || value === true) return resolved;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new K8sOptionsError(
      `cache.telemetry must be true, false or an object { traces?, metrics?, recordKeys? }, got ${JSON.stringify(value)}.`,
    );
  }
  const options = value as Record<string, unknown>;
  for (const name of Object.keys(options)) {
    if (!(FIELDS as readonly string[]).includes(name)) {
      throw new K8sOptionsError(
        `cache.telemetry.${name} is not an option; the options are ${FIELDS.join(', ')}.`,
      );
    }
  }
  for (const name of FIELDS) {
    const field = options[name];
    if (field === undefined) continue;
    if (typeof field !== 'boolean') {
      throw new K8sOptionsError(
        `cache.telemetry.${name} must be true or false, got ${JSON.stringify(field)}.`,
      );
    }
    resolved[name] = field;
  }
  return resolved.traces || resolved.metrics ? resolved : false;
}
