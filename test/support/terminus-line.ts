import { fileURLToPath } from 'node:url';

/**
 * The Terminus line a test pass runs on: `11` in the vitest project `terminus-11` (which sets
 * `NESTJS_K8S_TEST_TERMINUS` and aliases in-process imports of `@nestjs/terminus` to the copy
 * terminus-11.setup.ts installs), otherwise `12` (the dev dependency).
 */
export const TERMINUS_LINE: '11' | '12' =
  process.env.NESTJS_K8S_TEST_TERMINUS === '11' ? '11' : '12';

/** Where terminus-11.setup.ts installs `@nestjs/terminus` 11 (outside the dev dependencies). */
export const TERMINUS_11_DIR = fileURLToPath(new URL('../../.cache/terminus-11', import.meta.url));

/** The release of Terminus 11 the `terminus-11` project runs: the one the README's Nest 11 line installs today. */
export const TERMINUS_11_VERSION = '11.1.1';

/**
 * What a health check reports for a cache with no member answering: Terminus 12 has a
 * `degraded` status; Terminus 11 only `up`/`down`, so the indicator says `up` with `degraded: true`.
 * Both keep HTTP 200.
 */
export const DEGRADED_CACHE: { status: string; degraded?: true } =
  TERMINUS_LINE === '12' ? { status: 'degraded' } : { status: 'up', degraded: true };

/** The overall status of a health check whose only non-`up` indicator is a degraded cache. */
export const DEGRADED_CHECK_STATUS = TERMINUS_LINE === '12' ? 'degraded' : 'ok';
