import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Controller, Get, Param, ParseIntPipe, UseInterceptors } from '@nestjs/common';
import { CacheInterceptor, CacheService } from 'nestjs-k8s';

// Read from the app's node_modules: not every package exports its package.json.
const version = (name: string): string =>
  (
    JSON.parse(readFileSync(join(process.cwd(), 'node_modules', name, 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;

let counted = 0;

@Controller()
export class AppController {
  constructor(private readonly cache: CacheService) {}

  /** What actually runs: the runner compares it with the combination it meant to build. */
  @Get('info')
  info(): Record<string, string> {
    return {
      node: process.version,
      module: typeof module === 'object' ? 'commonjs' : 'esm',
      nest: version('@nestjs/core'),
      cacheManager: version('@nestjs/cache-manager'),
      terminus: version('@nestjs/terminus'),
      typeorm: version('typeorm'),
      nestTypeorm: version('@nestjs/typeorm'),
      keyv: version('keyv'),
    };
  }

  /** Counts the calls that reach it: the second request must be answered from the cache. */
  @Get('counter')
  @UseInterceptors(CacheInterceptor)
  counter(): { count: number } {
    return { count: ++counted };
  }

  /** The members the cache discovered. */
  @Get('cache/servers')
  servers(): string[] {
    return this.cache.servers();
  }

  /** Writes `n` keys through CacheService and reads them back: how many came back intact. */
  @Get('cache/fill/:n')
  async fill(@Param('n', ParseIntPipe) n: number): Promise<{ written: number; readBack: number }> {
    const keys = Array.from({ length: n }, (_, i) => `fill:${i}`);
    await Promise.all(keys.map((key, i) => this.cache.set(key, { i })));
    const values = await Promise.all(keys.map((key) => this.cache.get<{ i: number }>(key)));
    return { written: n, readBack: values.filter((value, i) => value?.i === i).length };
  }
}
