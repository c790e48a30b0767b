import { fileURLToPath } from 'node:url';

/**
 * The TypeORM line a test pass runs on: `0.3` in the vitest project `typeorm-0.3` (which sets
 * `NESTJS_K8S_TEST_TYPEORM`, aliases in-process imports of `typeorm` to the `typeorm-0.3`
 * package, and makes every command it spawns load typeorm-0.3.register.mjs), otherwise `1`.
 */
export const TYPEORM_LINE: '0.3' | '1' =
  process.env.NESTJS_K8S_TEST_TYPEORM === '0.3' ? '0.3' : '1';

/** What `loadedTypeormCopies()` must say: exactly one copy, of the line under test. */
export const EXPECTED_TYPEORM_COPY =
  TYPEORM_LINE === '0.3' ? /^typeorm-0\.3@0\.3\.\d+$/ : /^typeorm@1\.\d+\.\d+$/;

/** The `NODE_OPTIONS` that make a spawned process load the TypeORM line under test. */
export function typeormLineNodeOptions(): string | undefined {
  if (TYPEORM_LINE === '1') return undefined;
  return `--import=${fileURLToPath(new URL('./typeorm-0.3.register.mjs', import.meta.url))}`;
}

export { loadedTypeormCopies } from './loaded-typeorm.mjs';

/** The absolute path of loaded-typeorm.mjs, for a spawned script to import. */
export const LOADED_TYPEORM_MODULE = fileURLToPath(
  new URL('./loaded-typeorm.mjs', import.meta.url),
);
