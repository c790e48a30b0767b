import { buildDist } from './build.mjs';

/**
 * Tests that run the commands as a user does spawn the compiled sample (`node dist/sample/main.js`),
 * so dist/ is built before any test file runs: a stale dist/ would test yesterday's code.
 *
 * One build per run: this is the root config's global setup, which vitest runs once for the whole
 * run whatever projects are selected; no project's own set-up builds (each project used to have
 * this one, and each rebuilt dist/). No test writes or deletes the repository's dist/: those that
 * need another build (package.e2e-spec.ts, migrations-nest-cli.e2e-spec.ts) make it in a folder
 * of their own.
 */
export default function setup(): void {
  // Only for quick local iteration on tests that do not spawn the sample.
  if (process.env.NESTJS_K8S_SKIP_BUILD === '1') return;
  buildDist();
}
