import { createRequire } from 'node:module';
import type * as PromClientModule from 'prom-client';
import { K8sError } from '../errors/k8s.error.js';

/** The prom-client module. */
export type PromClient = typeof PromClientModule;

/** prom-client is an optional peer dependency and is missing here; install it. */
export class PromClientMissingError extends K8sError {}

/**
 * Load prom-client (an optional peer) only when metrics are registered, so apps that never do
 * need not install it. `load` resolves a module by name; tests pass one that resolves from
 * elsewhere.
 */
export function loadPromClient(
  load: (name: string) => unknown = createRequire(import.meta.url),
): PromClient {
  try {
    return load('prom-client') as PromClient;
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'MODULE_NOT_FOUND') throw error;
    throw new PromClientMissingError(
      'nestjs-k8s/prometheus needs prom-client, an optional peer dependency that is not ' +
        'installed: run `npm install prom-client` (or use the one @willsoto/nestjs-prometheus ' +
        'brings) and restart.',
      { cause: error },
    );
  }
}
