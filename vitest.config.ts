import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';
import type { AliasOptions, UserConfig } from 'vite';
import { TERMINUS_11_DIR } from './test/support/terminus-line.js';
import { scaled } from './test/support/timing.js';

// Exact matches: a prefix alias 'nestjs-k8s' would also rewrite 'nestjs-k8s/health'.
const packageAliases = [
  {
    find: /^nestjs-k8s\/health$/,
    replacement: new URL('./lib/health/index.ts', import.meta.url).pathname,
  },
  {
    find: /^nestjs-k8s\/prometheus$/,
    replacement: new URL('./lib/metrics/index.ts', import.meta.url).pathname,
  },
  { find: /^nestjs-k8s$/, replacement: new URL('./lib/index.ts', import.meta.url).pathname },
];

const shared = {
  // Nest's DI needs decorator metadata, which esbuild does not emit.
  plugins: [swc.vite({ module: { type: 'es6' } })],
  test: {
    // NESTJS_K8S_TEST_TIME_SCALE stretches these with every other timing the tests depend on.
    testTimeout: scaled(30_000),
    hookTimeout: scaled(60_000),
  },
};

const project = (
  name: string,
  include: string[],
  alias: AliasOptions,
  env: Record<string, string> = {},
  globalSetup: string[] = [],
): UserConfig => ({
  ...shared,
  resolve: { alias },
  test: {
    ...shared.test,
    name,
    include,
    env,
    // The project's own set-up only: dist/ is built once for all projects (the root's, below).
    globalSetup,
  },
});

export default defineConfig({
  test: {
    // Builds dist/ once per run, for every project: vitest runs the root config's global setup
    // whatever projects run; no project's own set-up builds (see the file).
    globalSetup: ['test/support/global-setup.ts'],
    // Files start their own memcached/DNS servers on distinct loopback addresses: run them in
    // parallel, but never more than the machine's two cores can serve.
    maxWorkers: 2,
    // Files and tests in a new random order on every run: a test that needs another to have run
    // first fails here, not in a user's fork. The seed is printed at the start and again at the
    // end (our reporter); `--sequence.seed=N` replays an order, `--sequence.shuffle=false` runs
    // in file order.
    sequence: { shuffle: true },
    reporters: ['default', './test/support/seed-reporter.ts'],
    projects: [
      project(
        'default',
        ['lib/**/*.spec.ts', 'test/**/*.spec.ts', 'test/**/*.e2e-spec.ts'],
        packageAliases,
      ),
      // The migration code again on TypeORM 0.3 (the `typeorm-0.3` dev dependency): `typeorm`
      // is aliased here, and the commands the tests spawn load the same copy through
      // test/support/typeorm-0.3.register.mjs (see test/support/typeorm-line.ts).
      project(
        'typeorm-0.3',
        ['lib/migrations/**/*.spec.ts', 'test/e2e/migrations-*.e2e-spec.ts'],
        [...packageAliases, { find: /^typeorm(\/.*)?$/, replacement: 'typeorm-0.3$1' }],
        { NESTJS_K8S_TEST_TYPEORM: '0.3' },
      ),
      // The health code again on Terminus 11 (no `degraded` status there): in-process imports of
      // `@nestjs/terminus` go to the copy test/support/terminus-11.setup.ts installs.
      project(
        'terminus-11',
        [
          'lib/health/**/*.spec.ts',
          'test/e2e/health.e2e-spec.ts',
          'test/e2e/shutdown-helper.e2e-spec.ts',
        ],
        [
          ...packageAliases,
          {
            find: /^@nestjs\/terminus$/,
            replacement: `${TERMINUS_11_DIR}/node_modules/@nestjs/terminus/dist/index.js`,
          },
        ],
        { NESTJS_K8S_TEST_TERMINUS: '11' },
        ['test/support/terminus-11.setup.ts'],
      ),
    ],
  },
});
