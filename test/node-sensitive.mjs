// The tests whose outcome can depend on the Node version, each with what differs between majors.
// CI runs every test on the machine's Node (`npm test`) and these again on Node 24 (.ci/run).
// The files left out are plain JavaScript over the same few built-ins these already cover (Nest,
// Keyv, cache-manager, TypeORM and the database drivers, our pool and parser over net sockets),
// or static checks of text and types (docs, manifests, package contents); the version matrix
// (`npm run test:compat`) also runs the example app with Nest 12 on Node 24, the packed package
// installed, against memcached and PostgreSQL. test/node-sensitive.spec.ts keeps this list
// pointing at files.
//
//   node test/node-sensitive.mjs     the paths, one per line (vitest filters: .ci/run passes them)

/** [path, what can differ by Node]; a folder path ends with '/'. */
export const NODE_SENSITIVE = [
  ['lib/', 'every unit spec, about 25 s: our code on the other V8 and built-in modules'],
  ['test/e2e/consumers.e2e-spec.ts', 'require() of our ES modules from a CommonJS app'],
  [
    'test/e2e/telemetry-absent.e2e-spec.ts',
    'the optional @opentelemetry/api missing: how loading it fails',
  ],
  [
    'test/e2e/telemetry.e2e-spec.ts',
    'span context through AsyncLocalStorage (Node 24 rebuilt it on AsyncContextFrame)',
  ],
  [
    'test/e2e/telemetry-sample.e2e-spec.ts',
    'node --import and the SDK patching node:http in a spawned app',
  ],
  [
    'test/e2e/migrations-sqlite.e2e-spec.ts',
    'better-sqlite3 (native, built per ABI); spawned commands, exit codes, signals',
  ],
  [
    'test/e2e/sample.e2e-spec.ts',
    'the built sample started as an image starts it, SQLite, SIGTERM',
  ],
  [
    'test/e2e/shutdown.e2e-spec.ts',
    'signals and exit codes of the built sample, node:http draining',
  ],
  ['test/e2e/shutdown-helper.e2e-spec.ts', 'node:http server close and keep-alive semantics'],
  ['test/e2e/tls.e2e-spec.ts', 'node:tls on the OpenSSL each Node bundles'],
  [
    'test/e2e/discovery.e2e-spec.ts',
    'node:dns (c-ares moves with Node): answers, error codes, AAAA, SRV',
  ],
  [
    'test/e2e/dns-faults.e2e-spec.ts',
    'node:dns on garbage, cut, silent and 500-record (TCP) answers; async_hooks',
  ],
  [
    'test/e2e/memcached-failures.e2e-spec.ts',
    'net socket errors and close events, timers on hung members',
  ],
];

if (import.meta.filename === process.argv[1]) {
  console.log(NODE_SENSITIVE.map(([path]) => path).join('\n'));
}
