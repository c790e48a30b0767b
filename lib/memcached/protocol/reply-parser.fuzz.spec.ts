import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { flagsFor, TYPE_STRING } from './key-check.js';
import type { ReplyKind } from './reply-parser.js';
import {
  ProtocolViolation,
  REPLY_DELETE,
  REPLY_GET,
  REPLY_STATS,
  REPLY_STORE,
  ReplyParser,
  VALUE_SLACK,
} from './reply-parser.js';
import { QueueSink } from '../../../test/support/reply-queue.js';

const SEED = 1212;
const MAX_VALUE = 200;
const KEYS = ['a', 'bb', 'key:1', 'k~2'];

/** The value a well-behaved member holds for `key` in these runs. */
const valueOf = (key: string): string => `value of ${key}`;

interface Command {
  kind: ReplyKind;
  keys: string[];
  hits: boolean[];
}
interface Mutation {
  at: number;
  op: 'flip' | 'drop' | 'insert';
  byte: number;
}

const command: fc.Arbitrary<Command> = fc.record({
  kind: fc.constantFrom<ReplyKind>(REPLY_GET, REPLY_STORE, REPLY_DELETE, REPLY_STATS),
  keys: fc.subarray(KEYS, { minLength: 1 }),
  hits: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
});

/** The reply a well-behaved memcached sends to `c`. */
function replyTo(c: Command): string {
  switch (c.kind) {
    case REPLY_GET:
      return (
        c.keys
          .filter((_, i) => c.hits[i])
          .map(
            (k) =>
              `VALUE ${k} ${flagsFor(k, TYPE_STRING)} ${valueOf(k).length}\r\n${valueOf(k)}\r\n`,
          )
          .join('') + 'END\r\n'
      );
    case REPLY_STORE:
      return 'STORED\r\n';
    case REPLY_DELETE:
      return 'NOT_FOUND\r\n';
    default:
      return 'STAT uptime 5\r\nEND\r\n';
  }
}

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    at: fc.nat(),
    op: fc.constant('flip' as const),
    byte: fc.integer({ min: 0, max: 255 }),
  }),
  fc.record({ at: fc.nat(), op: fc.constant('drop' as const), byte: fc.constant(0) }),
  fc.record({
    at: fc.nat(),
    op: fc.constant('insert' as const),
    byte: fc.integer({ min: 0, max: 255 }),
  }),
);

function mutate(bytes: Buffer, mutations: ReadonlyArray<Mutation>): Buffer {
  let out = bytes;
  for (const m of mutations) {
    if (out.length === 0) break;
    const at = m.at % out.length;
    if (m.op === 'flip') {
      out = Buffer.from(out);
      out[at] = m.byte;
    } else if (m.op === 'drop') {
      out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1)]);
    } else {
      out = Buffer.concat([out.subarray(0, at), Buffer.from([m.byte]), out.subarray(at)]);
    }
  }
  return out;
}

/** Feed `bytes` in chunks cut at `cuts`; checks the invariants of every run. */
function run(
  commands: ReadonlyArray<Command>,
  bytes: Buffer,
  cuts: readonly number[],
): { sink: QueueSink; violated: boolean } {
  const sink = new QueueSink();
  const asked = commands.map((c) => sink.ask(c.kind, c.kind === REPLY_GET ? c.keys : ''));
  const parser = new ReplyParser(sink, MAX_VALUE);
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((x, y) => x - y);
  let violated = false;
  let from = 0;
  for (const to of [...points, bytes.length]) {
    try {
      parser.feed(bytes.subarray(from, to));
    } catch (error) {
      // The only way out: a protocol violation (the connection is then closed).
      expect(error).toBeInstanceOf(ProtocolViolation);
      violated = true;
      break;
    }
    from = to;
  }
  // Never more replies than commands, always oldest first.
  expect(sink.done.length).toBeLessThanOrEqual(commands.length);
  sink.done.forEach((d, i) => expect(d.reply).toBe(asked[i]));
  // A value read for a key is that key's value: never another key's, never unbounded.
  for (const reply of asked) {
    const keys = reply.keys ?? [reply.key];
    const values = reply.values ?? [reply.value];
    values.forEach((value, i) => {
      if (value === undefined) return;
      expect(typeof value).toBe('string');
      expect((value as string).length).toBeLessThanOrEqual(MAX_VALUE + VALUE_SLACK);
      expect(keys[i]).not.toBe(undefined);
    });
  }
  return { sink, violated };
}

describe('ReplyParser under random and mutated replies (fast-check, seeded)', () => {
  it('reads well-formed reply streams cut anywhere exactly', () => {
    fc.assert(
      fc.property(
        fc.array(command, { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (commands, cuts) => {
          const bytes = Buffer.from(commands.map(replyTo).join(''));
          const { sink, violated } = run(commands, bytes, cuts);
          expect(violated).toBe(false);
          expect(sink.done).toHaveLength(commands.length);
          for (const { reply } of sink.done) {
            if (reply.kind !== REPLY_GET) continue;
            (reply.values ?? []).forEach(
              (v, i) => v !== undefined && expect(v).toBe(valueOf(reply.keys![i])),
            );
          }
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('never throws anything but a protocol violation and never hands out a wrong value on mutated streams', () => {
    fc.assert(
      fc.property(
        fc.array(command, { minLength: 1, maxLength: 8 }),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (commands, mutations, cuts) => {
          const bytes = mutate(Buffer.from(commands.map(replyTo).join('')), mutations);
          const { sink } = run(commands, bytes, cuts);
          for (const { reply } of sink.done) {
            if (reply.kind !== REPLY_GET) continue;
            // A flipped data byte changes the value but not its key check: still that key's
            // bytes. A header or key mutated into another key's is a violation or a mismatch.
            (reply.values ?? []).forEach((v, i) => {
              if (v !== undefined)
                expect((v as string).length).toBe(valueOf(reply.keys![i]).length);
            });
          }
        },
      ),
      { seed: SEED, numRuns: 1000 },
    );
  });

  it('survives random bytes', () => {
    fc.assert(
      fc.property(
        fc.array(command, { minLength: 1, maxLength: 4 }),
        fc.uint8Array({ maxLength: 600 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (commands, junk, cuts) => {
          run(commands, Buffer.from(junk), cuts);
        },
      ),
      { seed: SEED, numRuns: 1000 },
    );
  });

  it('reads another key’s data under the right key as a miss', () => {
    fc.assert(
      fc.property(fc.constantFrom(...KEYS), fc.constantFrom(...KEYS), (asked, stored) => {
        fc.pre(asked !== stored);
        const sink = new QueueSink();
        const reply = sink.ask(REPLY_GET, asked);
        const data = valueOf(stored);
        new ReplyParser(sink, MAX_VALUE).feed(
          Buffer.from(
            `VALUE ${asked} ${flagsFor(stored, TYPE_STRING)} ${data.length}\r\n${data}\r\nEND\r\n`,
          ),
        );
        expect(reply.value).toBeUndefined();
        expect(reply.keyMismatches).toBe(1);
      }),
      { seed: SEED, numRuns: 50 },
    );
  });
});
