import { describe, expect, it } from 'vitest';
import { postgresLockKey } from './migration-lock.js';

describe('postgresLockKey', () => {
  it('is a stable signed 64-bit integer', () => {
    const key = postgresLockKey('nestjs-k8s:migrate:migrations');
    expect(key).toBe(postgresLockKey('nestjs-k8s:migrate:migrations'));
    expect(BigInt(key) >= -(2n ** 63n) && BigInt(key) < 2n ** 63n).toBe(true);
  });
});
