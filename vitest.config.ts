import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['lib/**/*.spec.ts', 'test/**/*.spec.ts', 'test/**/*.e2e-spec.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Files start their own memcached/DNS servers on distinct loopback addresses: run them in
    // parallel, but never more than the machine's two cores can serve.
    maxWorkers: 2,
  },
  resolve: {
    // Exact matches: a prefix alias 'nestjs-k8s' would also rewrite 'nestjs-k8s/health'.
    alias: [
      {
        find: /^nestjs-k8s\/health$/,
        replacement: new URL('./lib/health/index.ts', import.meta.url).pathname,
      },
      {
        find: /^nestjs-k8s\/prometheus$/,
        replacement: new URL('./lib/metrics/index.ts', import.meta.url).pathname,
      },
      { find: /^nestjs-k8s$/, replacement: new URL('./lib/index.ts', import.meta.url).pathname },
    ],
  },
  // Nest's DI needs decorator metadata, which esbuild does not emit.
  plugins: [swc.vite({ module: { type: 'es6' } })],
});
