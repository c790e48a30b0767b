import { describe, expect, it } from 'vitest';
import { maskCredentials, secretsOf } from './mask-credentials.js';

describe('maskCredentials', () => {
  it('hides URL passwords and known secrets, plain and URL-encoded', () => {
    const url = 'postgres://app:p%40ssw0rd@db:5432/app';
    const secrets = secretsOf({
      type: 'postgres',
      url,
      replication: { master: { password: 'm4ster1' } },
    });
    expect(secrets.sort()).toEqual(['m4ster1', 'p@ssw0rd']);
    expect(maskCredentials(`cannot reach ${url} (p@ssw0rd, m4ster1)`, secrets)).toBe(
      'cannot reach postgres://app:***@db:5432/app (***, ***)',
    );
  });
});

describe('maskCredentials on unencoded passwords', () => {
  it.each([
    ['postgres://u:p@ss@host/db', 'postgres://u:***@host/db'],
    ['mysql://u:a:b/c#d@host:3306/db is down', 'mysql://u:***@host:3306/db is down'],
    ['at postgres://u:s3cr3t@db.local', 'at postgres://u:***@db.local'],
    [
      'two: postgres://a:x@h1/d and mysql://b:y@h2/e',
      'two: postgres://a:***@h1/d and mysql://b:***@h2/e',
    ],
  ])('masks up to the last @ of the authority: %s', (text, masked) => {
    expect(maskCredentials(text)).toBe(masked);
  });

  it('masks a secret only as a whole token, never a short one, never one equal to the user', () => {
    // Short: masking "x" everywhere garbles the text and shows where the password's letters are.
    expect(maskCredentials('Connection terminated unexpectedly', ['x'])).toBe(
      'Connection terminated unexpectedly',
    );
    expect(maskCredentials('bad s3cr3tpw! and mys3cr3tpw', ['s3cr3tpw'])).toBe(
      'bad ***! and mys3cr3tpw',
    );
    const same = secretsOf({ type: 'mysql', username: 'rvsame', password: 'rvsame' });
    expect(same).toEqual([]);
    expect(maskCredentials("Access denied for user 'rvsame'@'%'", same)).toBe(
      "Access denied for user 'rvsame'@'%'",
    );
    expect(secretsOf({ type: 'postgres', url: 'postgres://rvsame:rvsame@db/app' })).toEqual([]);
    // The URL rule still hides short passwords inside URLs.
    expect(maskCredentials('at postgres://u:x@db/app')).toBe('at postgres://u:***@db/app');
  });

  it('masks a known secret with spaces and URL characters, plain and encoded', () => {
    const secret = 'P@w:/d#5% x';
    expect(maskCredentials(`bad ${secret} / ${encodeURIComponent(secret)}`, [secret])).toBe(
      'bad *** / ***',
    );
  });
});
