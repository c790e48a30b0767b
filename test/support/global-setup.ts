import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Tests that run the commands as a user does spawn the compiled sample (`node dist/sample/main.js`),
 * so build once before any test file runs: a stale `dist/` would test yesterday's code.
 */
export default function setup(): void {
  // Only for quick local iteration on tests that do not spawn the sample.
  if (process.env.NESTJS_K8S_SKIP_BUILD === '1') return;
  const root = fileURLToPath(new URL('../..', import.meta.url));
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    cwd: root,
    stdio: 'inherit',
  });
}
