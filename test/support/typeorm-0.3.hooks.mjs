// Module resolve hook for the TypeORM 0.3 test pass: every `import 'typeorm'` (the library, the
// sample's entities and migrations, a test's script) loads the `typeorm-0.3` alias instead, so
// one process never mixes the two copies. Registered by typeorm-0.3.register.mjs.
export async function resolve(specifier, context, next) {
  if (specifier === 'typeorm' || specifier.startsWith('typeorm/')) {
    return next(`typeorm-0.3${specifier.slice('typeorm'.length)}`, context);
  }
  return next(specifier, context);
}
