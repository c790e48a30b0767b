import type { Tracer, TracerProvider } from '@opentelemetry/api';
import type { OtelApi } from './otel-api-loader.js';

/**
 * The global tracer as it is now, or undefined while no SDK is registered. Read on every command:
 * an SDK registered after the store was created is seen (also through another copy of the API,
 * an app's ESM copy next to the CommonJS one loaded here), and without an SDK no span object is
 * made at all.
 */
export class GlobalTracer {
  private provider: TracerProvider | undefined;
  private delegate: unknown;
  private tracer: Tracer | undefined;

  constructor(
    private readonly api: OtelApi,
    private readonly scope: string,
  ) {}

  current(): Tracer | undefined {
    const provider = this.api.trace.getTracerProvider();
    // The API's global is a ProxyTracerProvider, which forwards to the SDK's once one is set.
    const delegate =
      (provider as { getDelegate?: () => TracerProvider }).getDelegate?.() ?? provider;
    if (provider !== this.provider || delegate !== this.delegate) {
      this.provider = provider;
      this.delegate = delegate;
      this.tracer = isNoop(delegate) ? undefined : provider.getTracer(this.scope);
    }
    return this.tracer;
  }
}

/**
 * The API's own no-op provider (of whichever copy). Told by its class name, as copies do not share
 * classes; a bundler that renames it only costs the shortcut (spans are then made and dropped).
 */
function isNoop(provider: unknown): boolean {
  return (
    (provider as { constructor?: { name?: string } }).constructor?.name === 'NoopTracerProvider'
  );
}
