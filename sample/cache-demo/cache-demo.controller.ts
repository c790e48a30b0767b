import { setTimeout as delay } from 'node:timers/promises';
import {
  BadRequestException,
  Controller,
  DefaultValuePipe,
  Get,
  Param,
  ParseIntPipe,
  Query,
  UseInterceptors,
} from '@nestjs/common';
import { CacheInterceptor, CacheService, CacheTTL } from 'nestjs-k8s';

let computations = 0;

/** Shows the two ways to cache: the interceptor for whole responses, `wrap` for a computation. */
@Controller()
export class CacheDemoController {
  constructor(private readonly cache: CacheService) {}

  /** Whole response cached by `CacheInterceptor` for 10 s; `computed` shows when it ran. */
  @Get('time')
  @UseInterceptors(CacheInterceptor)
  @CacheTTL(10_000)
  time(): { computed: number; at: string } {
    return { computed: ++computations, at: new Date().toISOString() };
  }

  /** A slow computation cached per argument through `CacheService.wrap`. */
  @Get('square/:n')
  async square(@Param('n') n: string): Promise<{ n: number; square: number; computed: number }> {
    return this.cache.wrap(`square:${n}`, () => ({
      n: Number(n),
      square: Number(n) ** 2,
      computed: ++computations,
    }));
  }

  /**
   * A request that takes `ms` (at most 10 s): shows that a SIGTERM lets requests in flight
   * finish before the process exits.
   */
  @Get('slow')
  async slow(
    @Query('ms', new DefaultValuePipe(1000), ParseIntPipe) ms: number,
  ): Promise<{ sleptMs: number }> {
    if (ms < 0 || ms > 10_000) throw new BadRequestException('ms must be from 0 to 10000');
    await delay(ms);
    return { sleptMs: ms };
  }

  /** What the cache runs on: the discovered members and the pool's counters. */
  @Get('cache/stats')
  stats() {
    return this.cache.stats();
  }
}
