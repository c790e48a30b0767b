import { Buffer } from 'node:buffer';
import { defaultDeserialize, defaultSerialize } from '@keyv/serialize';
import fc from 'fast-check';
import * as test from 'vitest';
import { keyvDeserialize, withStringEntryShortcut } from './keyv-serializer.js';

// K8sModule gives Keyv `keyvDeserialize` instead of
// Keyv's default: it must read back exactly what the default would, for any stored text.

/** What a deserializer gives for `text`: its value, or the error it throws (same class). */
function outcome(deserialize: (text: string) => unknown, text: string): unknown {
  try {
    return { value: deserialize(text) };
  } catch (error) {
    return { error: (error as Error).constructor.name };
  }
}

/** Same result as Keyv's default, compared deeply (Buffers by class and bytes). */
function expectSameAsDefault(text: string): void {
  const ours = outcome(keyvDeserialize, text);
  test.expect(ours).toStrictEqual(outcome(defaultDeserialize, text));
}

const roundTrip = (value: unknown): void =>
  expectSameAsDefault(defaultSerialize({ value, expires: null }));

test.describe('keyvDeserialize equals @keyv/serialize defaultDeserialize', () => {
  test.it.each([
    ['a Buffer', Buffer.from([0, 1, 2, 250, 255])],
    ['an empty Buffer', Buffer.alloc(0)],
    ['nested Buffers', { a: [Buffer.from('x'), { b: Buffer.from('yz') }] }],
    ['strings that look like markers', [':', '::', ':base64:', ':base64:AAE=', '::base64:AAE=']],
    ['a date, serialized as its ISO string', new Date(Date.UTC(2026, 10, 25))],
    ['unicode', 'zürich ✓ 日本 🦄 \u2028 \u0000'],
    ['deep nesting', { a: { b: { c: { d: [[[':deep']]] } } } }],
    ['numbers', [0, -0, 1.5, -1e300, Number.MAX_SAFE_INTEGER]],
    ['null and booleans', [null, true, false]],
    ['an object with a __proto__ key', JSON.parse('{"__proto__":":p","x":1}') as unknown],
    ['keys that start with a colon', { ':k': ':v', ':base64:AA==': 1 }],
  ])('%s', (_name, value) => {
    roundTrip(value);
    const entry = keyvDeserialize<{ expires: unknown }>(defaultSerialize({ value, expires: 1 }));
    test.expect(entry.expires).toBe(1);
  });

  test.it('revives exactly as the default on a top-level string and on hand-written text', () => {
    for (const text of [
      '":base64:AAE="',
      '"::x"',
      '":"',
      '""',
      '"plain"',
      '{ "value" : ":x" , "expires" : null }',
      '[":a", {"k": ":base64:"}]',
      '{"__proto__": ":p"}',
      '{"__proto__": {"a": ":b"}}',
      '{"a":1,"a":":2"}',
      'null',
      '42',
      '{"value":', // invalid JSON: both throw a SyntaxError
      '',
    ]) {
      expectSameAsDefault(text);
    }
    const proto = keyvDeserialize<Record<string, unknown>>('{"__proto__": ":p"}');
    test.expect(Object.getPrototypeOf(proto)).toBe(Object.prototype);
    test.expect(Object.getOwnPropertyDescriptor(proto, '__proto__')?.value).toBe('p');
  });

  test.it('on any JSON value, Buffers included, after the default serializer', () => {
    const leaf = fc.oneof(
      fc.string({ unit: 'grapheme' }),
      fc.string({ unit: 'binary' }),
      fc.constantFrom(':', '::', ':base64:', ':base64:AAE=', '::base64:x'),
      fc.string().map((s) => `:${s}`),
      fc.string().map((s) => `:base64:${s}`),
      fc.double(),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.uint8Array({ maxLength: 16 }).map((bytes) => Buffer.from(bytes)),
    );
    const { tree } = fc.letrec((tie) => ({
      tree: fc.oneof(
        { depthSize: 'small' },
        leaf,
        fc.array(tie('tree'), { maxLength: 4 }),
        fc.dictionary(fc.string(), tie('tree'), { maxKeys: 4 }),
      ),
    }));
    fc.assert(
      fc.property(tree, fc.option(fc.integer()), (value, expires) => {
        expectSameAsDefault(defaultSerialize({ value, expires }));
      }),
      { numRuns: 2000 },
    );
  });

  test.it('on any text, valid JSON or not', () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string({ unit: 'binary' })), (text) => {
        expectSameAsDefault(text);
      }),
      { numRuns: 2000 },
    );
  });
});

test.describe('withStringEntryShortcut(defaultSerialize) equals defaultSerialize', () => {
  const serialize = withStringEntryShortcut(defaultSerialize) as (data: unknown) => string;
  // The shortcut alone: a fallback that throws proves which entries it serves by itself.
  const shortcutOnly = withStringEntryShortcut(() => {
    throw new Error('fallback used');
  }) as (data: unknown) => string;
  const tricky = [
    '',
    'plain',
    ':',
    '::x',
    ':base64:AAE=',
    'quote " backslash \\ slash /',
    'controls \u0000 \u0001 \n \r \t \u001f \u007f',
    'separators \u2028 \u2029',
    'pair 🦄, lone high \ud83e, lone low \udd84, reversed \udd84\ud83e',
    'zürich 日本',
    'w'.repeat(10_240),
    `${'x'.repeat(5000)}"`,
  ];
  const expiries = [undefined, 0, -0, 1.5, Date.now(), Number.NaN, Number.POSITIVE_INFINITY];

  test.it('on string values with every kind of expiry, by the shortcut alone', () => {
    for (const value of tricky) {
      for (const expires of expiries) {
        const entry = { value, expires };
        test.expect(shortcutOnly(entry)).toBe(defaultSerialize(entry));
        test.expect(serialize(entry)).toBe(defaultSerialize(entry));
      }
      test.expect(shortcutOnly({ value })).toBe(defaultSerialize({ value }));
    }
  });

  test.it('leaves every other shape to the default', () => {
    const others: unknown[] = [
      { value: 1, expires: null },
      { value: Buffer.from('x') },
      { value: { a: ':b' } },
      { value: 'x', expires: null },
      { expires: 1, value: 'x' },
      { value: 'x', expires: 1, extra: true },
      Object.assign(Object.create(null) as object, { value: 'x' }),
      { value: 'x', toJSON: () => 'y' },
      'x',
      null,
    ];
    for (const data of others) {
      test.expect(() => shortcutOnly(data)).toThrow('fallback used');
      test.expect(serialize(data)).toBe(defaultSerialize(data));
    }
  });

  test.it('on any string and expiry', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary' }),
          fc.string({ unit: 'grapheme' }),
          fc.string().map((s) => `:${s}`),
        ),
        fc.option(fc.double(), { nil: undefined }),
        (value, expires) => {
          const entry = { value, expires };
          test.expect(serialize(entry)).toBe(defaultSerialize(entry));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
