import { execFileSync } from 'node:child_process';

/** CI must prove everything: there a missing service fails the run instead of skipping tests. */
export const IN_CI = Boolean(process.env.CI) && process.env.CI !== 'false';

/**
 * Decide whether tests that need `name` run. Under CI a missing service throws (the run fails
 * loudly); on a developer's laptop the tests are skipped with a line that says so.
 */
export function serviceAvailable(name: string, available: boolean, hint: string): boolean {
  if (available) return true;
  const message = `${name} is not available (${hint})`;
  if (IN_CI)
    throw new Error(`${message}: CI must run these tests; .ci/run installs and starts it.`);
  console.warn(`SKIPPING tests that need ${message}. They run under CI.`);
  return false;
}

/** Absolute path of an executable on PATH, or undefined. */
export function findBinary(name: string): string | undefined {
  try {
    return (
      execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || undefined
    );
  } catch {
    return undefined;
  }
}
