import { CACHE_KEY_METADATA, CACHE_MANAGER, CACHE_TTL_METADATA } from '@nestjs/cache-manager';
import { Inject, Injectable, Logger, Optional, StreamableFile } from '@nestjs/common';
import type { CallHandler, ExecutionContext, NestInterceptor } from '@nestjs/common';
import { HttpAdapterHost, Reflector } from '@nestjs/core';
import type { Cache } from 'cache-manager';
import { lastValueFrom, of } from 'rxjs';
import type { Observable } from 'rxjs';
import type { WrapSource } from './fleet-wrap.js';
import { fleetWrapOf } from './fleet-wrap.js';

type KeyOrFactory = string | ((context: ExecutionContext) => string);
type TtlOrFactory = number | ((context: ExecutionContext) => number | Promise<number>);

/** A handler result that is not cached (a stream): each request runs its own handler. */
class Uncacheable {
  constructor(readonly result: StreamableFile) {}
}

/** The handler's own error, told apart from the cache's. */
class HandlerFailure {
  constructor(readonly error: unknown) {}
}

/**
 * `@nestjs/cache-manager`'s `CacheInterceptor`, without the stampede: the same decorators
 * (`@CacheKey`, `@CacheTTL`), keys (the request URL for GET requests of an HTTP app, the
 * `@CacheKey` value or factory otherwise), `X-Cache` header and overridable methods (`trackBy`,
 * `isRequestCacheable`, `allowedMethods`), but the handler runs through the cache's `wrap`:
 * concurrent requests for a key share one handler run in the process and, with `K8sModule`'s
 * cache, one fleet-wide (leases, stale-while-revalidate, mark-stale deletes). `X-Cache` is `HIT`
 * for a cached or stale value, `MISS` when this request ran the handler or waited for another's
 * run. A `StreamableFile` is never cached nor shared.
 */
@Injectable()
export class CacheInterceptor implements NestInterceptor {
  @Optional()
  @Inject(HttpAdapterHost)
  protected readonly httpAdapterHost?: HttpAdapterHost;
  protected allowedMethods = ['GET'];
  private readonly logger = new Logger('CacheInterceptor');

  constructor(
    @Inject(CACHE_MANAGER) protected readonly cacheManager: Cache,
    protected readonly reflector: Reflector,
  ) {}

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const key = await this.trackBy(context);
    if (!key) return next.handle();
    const ttlOrFactory =
      this.reflector.get<TtlOrFactory | undefined>(CACHE_TTL_METADATA, context.getHandler()) ??
      this.reflector.get<TtlOrFactory | undefined>(CACHE_TTL_METADATA, context.getClass());
    let produced: { value: unknown } | undefined;
    let stream: StreamableFile | undefined;
    const handler = async (): Promise<unknown> => {
      let result: unknown;
      try {
        result = await lastValueFrom(next.handle(), { defaultValue: undefined });
      } catch (error) {
        throw new HandlerFailure(error);
      }
      if (result instanceof StreamableFile) {
        stream = result;
        throw new Uncacheable(result);
      }
      produced = { value: result };
      return result;
    };
    let value: unknown;
    let source: WrapSource;
    try {
      const ttl = typeof ttlOrFactory === 'function' ? await ttlOrFactory(context) : ttlOrFactory;
      const fleet = fleetWrapOf(this.cacheManager);
      if (fleet !== undefined) {
        ({ value, source } = await fleet.run(key, handler, ttl == null ? {} : { ttl }));
      } else {
        value = await this.cacheManager.wrap(key, handler, ttl ?? undefined);
        source = produced === undefined ? 'hit' : 'loaded';
      }
    } catch (error) {
      // The handler failed (for every request that shared its run): as without a cache.
      if (error instanceof HandlerFailure) throw error.error;
      // A stream: this request's own, or a stream of another request's run: run our own.
      if (error instanceof Uncacheable) return stream === undefined ? next.handle() : of(stream);
      // The cache failed: the response is served uncached.
      if (produced !== undefined) return of(produced.value);
      this.logger.warn(
        `"${key}": not cached: ${error instanceof Error ? error.message : String(error)}`,
      );
      return next.handle();
    }
    this.setHeadersWhenHttp(context, source === 'hit' || source === 'stale' ? value : undefined);
    return of(value);
  }

  protected trackBy(context: ExecutionContext): string | undefined | Promise<string | undefined> {
    const httpAdapter = this.httpAdapterHost?.httpAdapter;
    const isHttpApp = httpAdapter !== undefined && !!httpAdapter.getRequestMethod;
    const keyOrFactory = this.reflector.get<KeyOrFactory | undefined>(
      CACHE_KEY_METADATA,
      context.getHandler(),
    );
    if (!isHttpApp || keyOrFactory) {
      return typeof keyOrFactory === 'function' ? keyOrFactory(context) : keyOrFactory;
    }
    if (!this.isRequestCacheable(context)) return undefined;
    return httpAdapter.getRequestUrl(context.getArgByIndex(0)) as string;
  }

  protected isRequestCacheable(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<{ method: string }>();
    return this.allowedMethods.includes(request.method);
  }

  protected setHeadersWhenHttp(context: ExecutionContext, value: unknown): void {
    const httpAdapter = this.httpAdapterHost?.httpAdapter;
    if (!httpAdapter) return;
    const response: unknown = context.switchToHttp().getResponse();
    httpAdapter.setHeader(response, 'X-Cache', value == null ? 'MISS' : 'HIT');
  }
}
