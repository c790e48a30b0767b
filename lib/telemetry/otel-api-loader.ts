import { createRequire } from 'node:module';
import type * as OtelApiModule from '@opentelemetry/api';
import { K8sError } from '../errors/k8s.error.js';

/** The `@opentelemetry/api` module. */
export type OtelApi = typeof OtelApiModule;

/** `cache.telemetry` asks for OpenTelemetry, but `@opentelemetry/api` is not installed. */
export class OtelApiMissingError extends K8sError {}

const MODULE = '@opentelemetry/api';
const requireHere = createRequire(import.meta.url);
/** The default load's outcome: null when the API is not installed. */
let loaded: OtelApi | null | undefined;

/**
 * `@opentelemetry/api`, an optional peer, or undefined when it is not installed. Loaded on first
 * use only, so apps without it never load it. Whichever copy resolves from here meets the app's
 * SDK: the API keeps its registrations on a process-wide symbol, shared by its CommonJS and ESM
 * builds of one major version. `load` resolves a module by name; tests pass one that fails.
 */
export function loadOtelApi(load: (name: string) => unknown = requireHere): OtelApi | undefined {
  const cache = load === requireHere;
  if (cache && loaded !== undefined) return loaded ?? undefined;
  let api: OtelApi | undefined;
  try {
    api = load(MODULE) as OtelApi;
  } catch (error) {
    // Only the API itself missing means "not installed"; a broken install must be seen.
    const { code, message } = error as { code?: unknown; message?: unknown };
    if (code !== 'MODULE_NOT_FOUND' || !String(message).includes(MODULE)) throw error;
  }
  if (cache) loaded = api ?? null;
  return api;
}

/** {@link loadOtelApi}, throwing a clear error when the API is missing. */
export function requireOtelApi(
  what: string,
  load: (name: string) => unknown = requireHere,
): OtelApi {
  const api = loadOtelApi(load);
  if (api === undefined) {
    throw new OtelApiMissingError(
      `${what} needs @opentelemetry/api, an optional peer dependency that is not installed: run ` +
        '`npm install @opentelemetry/api` (the version your OpenTelemetry SDK ' +
        'peers with), or set cache.telemetry to false.',
    );
  }
  return api;
}
