// The combinations `npm run test:compat` builds and runs. Each is a fresh app shaped like
// `nest new`'s output for its Nest line (`app`), to which the user's install line (`install`)
// adds this package and its peers: both are what the README tells users. The "latest" rows take
// the newest release in each range, the "floor" rows the lowest release the peer ranges in
// package.json admit, so that neither end of a range is declared without a run behind it.
// `expect`: version prefixes the running app must report (a resolution surprise fails the row).

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
  expect: { module: 'commonjs', nest: '11', cacheManager: '3', terminus: '11', typeorm: '0.3' },
};

const NEST_11_FLOOR = {
  ...NEST_11,
  app: {
    dependencies: {
      '@nestjs/common': '11.0.0',
      '@nestjs/core': '11.0.0',
      '@nestjs/platform-express': '11.0.0',
      'reflect-metadata': '0.2.2',
      rxjs: '7.8.1',
    },
    devDependencies: { '@types/node': '^22.10.7', typescript: '5.7.3' },
  },
  install: [
    '@nestjs/cache-manager@3.1.0',
    'cache-manager@7.2.0',
    'keyv@5.6.0',
    '@nestjs/terminus@11.0.0',
    '@nestjs/typeorm@11.0.0',
    'typeorm@0.3.20',
    'pg',
  ],
  expect: {
    module: 'commonjs',
    nest: '11.0.0',
    cacheManager: '3.1.0',
    terminus: '11.0.0',
    typeorm: '0.3.20',
  },
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
  expect: { module: 'esm', nest: '12', cacheManager: '12', terminus: '12', typeorm: '1' },
};

const NEST_12_FLOOR = {
  ...NEST_12,
  app: {
    ...NEST_12.app,
    dependencies: {
      '@nestjs/common': '12.0.0',
      // 12.0.0 of @nestjs/core and @nestjs/platform-express declare a peer @nestjs/common ^11:
      // no 12.x app can install them. 12.0.1 is the lowest of each that installs.
      '@nestjs/core': '12.0.1',
      '@nestjs/platform-express': '12.0.1',
      'reflect-metadata': '0.2.2',
      rxjs: '7.8.2',
    },
  },
  install: [
    '@nestjs/cache-manager@12.0.0',
    'cache-manager@7.2.0',
    'keyv@5.6.0',
    '@nestjs/terminus@12.0.0',
    '@nestjs/typeorm@12.0.0',
    'typeorm@1.0.0',
    'pg',
  ],
  expect: {
    module: 'esm',
    nest: '12.0.1',
    cacheManager: '12.0.0',
    terminus: '12.0.0',
    typeorm: '1.0.0',
  },
};

export const COMBINATIONS = [
  { id: 'nest11-cjs-node20', node: 20, ...NEST_11 },
  { id: 'nest11-cjs-node22', node: 22, ...NEST_11 },
  { id: 'nest12-esm-node24', node: 24, ...NEST_12 },
  { id: 'nest11-floor-cjs-node20', node: 20, ...NEST_11_FLOOR },
  { id: 'nest12-floor-esm-node22', node: 22, ...NEST_12_FLOOR },
];
