// The combinations `npm run test:compat` builds and runs. Each is a fresh app shaped like
// `nest new`'s output for its Nest line (`app` dependencies), to which the user's install line
// (`install`) adds this package and its peers: both lines are what the README tells users.

/** Nest 11 as most apps run it: CommonJS, TypeScript 5, @nestjs/cache-manager 3, TypeORM 0.3. */
const NEST_11 = {
  template: 'cjs',
  app: {
    dependencies: {
      '@nestjs/common': '^11.0.1',
      '@nestjs/core': '^11.0.1',
      '@nestjs/platform-express': '^11.0.1',
      'reflect-metadata': '^0.2.2',
      rxjs: '^7.8.1',
    },
    devDependencies: { '@types/node': '^22.10.7', typescript: '^5.7.3' },
  },
  install: [
    '@nestjs/cache-manager@^3.1',
    'cache-manager@^7.2',
    'keyv@^5.6',
    '@nestjs/terminus@^11',
    '@nestjs/typeorm@^11',
    'typeorm@^0.3.20',
    'pg',
  ],
  expect: { module: 'commonjs', nest: 11, cacheManager: 3, terminus: 11, typeorm: '0.3' },
};

/** Nest 12: ESM packages, an ESM app, TypeORM 1. */
const NEST_12 = {
  template: 'esm',
  app: {
    type: 'module',
    dependencies: {
      '@nestjs/common': '^12.0.0',
      '@nestjs/core': '^12.0.0',
      '@nestjs/platform-express': '^12.0.0',
      'reflect-metadata': '^0.2.2',
      rxjs: '^7.8.2',
    },
    devDependencies: { '@types/node': '^24.0.0', typescript: '~6.0.2' },
  },
  install: [
    '@nestjs/cache-manager@^12',
    'cache-manager@^7.2',
    'keyv@^5.6',
    '@nestjs/terminus@^12',
    '@nestjs/typeorm@^12',
    'typeorm@^1',
    'pg',
  ],
  expect: { module: 'esm', nest: 12, cacheManager: 12, terminus: 12, typeorm: '1' },
};

export const COMBINATIONS = [
  { id: 'nest11-cjs-node20', node: 20, ...NEST_11 },
  { id: 'nest11-cjs-node22', node: 22, ...NEST_11 },
  { id: 'nest12-esm-node24', node: 24, ...NEST_12 },
];
