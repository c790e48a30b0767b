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

/**
 * The `NODE_OPTIONS` that make a spawned process load the TypeORM line under test, and with
 * `report`, print which TypeORM copies it loaded as it exits (see {@link reportedTypeormCopies}).
 */
export function typeormLineNodeOptions(report = false): string | undefined {
  const imports = [
    ...(TYPEORM_LINE === '0.3' ? ['./typeorm-0.3.register.mjs'] : []),
    ...(report ? ['./report-typeorm.mjs'] : []),
  ];
  if (imports.length === 0) return undefined;
  return imports
    .map((path) => `--import=${fileURLToPath(new URL(path, import.meta.url))}`)
    .join(' ');
}

/**
 * The copies a process started with `reportTypeorm` printed, or undefined when it printed none.
 * Every Node process under it reports (npx and the nest CLI too, which load none): the copies
 * of all reports, so a second copy anywhere shows.
 */
export function reportedTypeormCopies(stdout: string): string[] | undefined {
  const reports = [...stdout.matchAll(/^TypeORM loaded: (.*)$/gm)].map((match) => match[1]);
  if (reports.length === 0) return undefined;
  return reports.flatMap((report) => (report ? report.split(', ') : []));
}

export { loadedTypeormCopies } from './loaded-typeorm.mjs';
