import { describe, expect, it } from 'vitest';
import { flagsFor, TYPE_JSON, TYPE_STRING } from './key-check.js';
import { META_PENDING, META_STALE, META_WIN } from './meta-flags.js';
import { QueueSink } from '../../../test/support/reply-queue.js';
import type { ReplyKind } from './reply-parser.js';
import {
  META_PLACEHOLDER,
  ProtocolViolation,
  REPLY_DELETE,
  REPLY_GET,
  REPLY_MD,
  REPLY_MG,
  REPLY_MG_BATCH,
  REPLY_MG_LEASE,
  REPLY_MS,
  REPLY_NOOP,
  REPLY_VERSION,
  ReplyParser,
} from './reply-parser.js';

const MAX_VALUE = 1000;

function setup(): { sink: QueueSink; parser: ReplyParser } {
  const sink = new QueueSink();
  return { sink, parser: new ReplyParser(sink, MAX_VALUE) };
}

/** `VA` as memcached 1.6 sends it for `mg <key> f v [c t | k]`, `extra` the flags after `f`. */
function va(key: string, data: string, extra = '', flags = flagsFor(key, TYPE_STRING)): string {
  return `VA ${Buffer.byteLength(data)} f${flags}${extra}\r\n${data}\r\n`;
}

describe('ReplyParser, meta replies', () => {
  it('reads meta gets, a quiet batch, ms, md, mn and version in order', () => {
    const { sink, parser } = setup();
    const hit = sink.ask(REPLY_MG, 'a');
    const miss = sink.ask(REPLY_MG, 'b');
    const batch = sink.ask(REPLY_MG_BATCH, ['a', 'b', 'c']);
    sink.ask(REPLY_MS, 'a');
    sink.ask(REPLY_MS, 'a');
    sink.ask(REPLY_MS, 'a');
    sink.ask(REPLY_MS, 'a');
    sink.ask(REPLY_MD, 'a');
    sink.ask(REPLY_MD, 'a');
    sink.ask(REPLY_NOOP);
    sink.ask(REPLY_VERSION);
    parser.feed(
      Buffer.from(
        va('a', 'héllo') +
          'EN\r\n' +
          va('a', '1', ' ka') +
          va('c', '3', ' kc') +
          'MN\r\nHD\r\nNS\r\nEX\r\nNF\r\nHD\r\nNF\r\nMN\r\nVERSION 1.6.18\r\n',
      ),
    );
    expect(hit.value).toBe('héllo');
    expect(miss.value).toBeUndefined();
    expect(batch.values).toEqual(['1', undefined, '3']);
    expect(sink.done.map((d) => d.status)).toEqual([
      'VA',
      'EN',
      'MN',
      'STORED',
      'NOT_STORED',
      'EXISTS',
      'NOT_FOUND',
      'DELETED',
      'NOT_FOUND',
      'MN',
      'VERSION 1.6.18',
    ]);
    expect(sink.queue).toEqual([]);
  });

  it('reads a lease: the win, the placeholder, CAS and TTL, whatever the order of W, X and Z', () => {
    const { sink, parser } = setup();
    const won = sink.ask(REPLY_MG_LEASE, 'k');
    const pending = sink.ask(REPLY_MG_LEASE, 'k');
    const stale = sink.ask(REPLY_MG_LEASE, 'k');
    const staleTaken = sink.ask(REPLY_MG_LEASE, 'k');
    parser.feed(
      Buffer.from(
        'VA 0 f0 c13 t-1 W\r\n\r\n' +
          'VA 0 f0 c13 t3 Z\r\n\r\n' +
          va('k', 'old', ' c18446744073709551615 t30 X W') +
          va('k', 'old', ' c7 t29 Z X'),
      ),
    );
    expect(won).toMatchObject({ value: undefined, state: META_WIN | META_PLACEHOLDER });
    expect(won).toMatchObject({ cas: '13', ttl: -1 });
    expect(pending).toMatchObject({ value: undefined, state: META_PENDING | META_PLACEHOLDER });
    expect(pending.ttl).toBe(3);
    expect(stale).toMatchObject({ value: 'old', state: META_STALE | META_WIN });
    expect(stale.cas).toBe('18446744073709551615');
    expect(staleTaken).toMatchObject({ value: 'old', state: META_STALE | META_PENDING });
    expect(sink.queue).toEqual([]);
  });

  it('reads a value marked stale as a miss for a plain read, and notes the token it took', () => {
    const { sink, parser } = setup();
    const first = sink.ask(REPLY_MG, 'k');
    const second = sink.ask(REPLY_MG, 'k');
    const batch = sink.ask(REPLY_MG_BATCH, ['k', 'j']);
    parser.feed(
      Buffer.from(
        va('k', 'old', ' X W') +
          va('k', 'old', ' Z X') +
          va('k', 'old', ' kk X W') +
          va('j', 'new', ' kj') +
          'MN\r\n',
      ),
    );
    expect([first.value, second.value]).toEqual([undefined, undefined]);
    expect(first.staleWon).toEqual(['k']);
    expect(second.staleWon).toBeUndefined();
    expect(batch.values).toEqual([undefined, 'new']);
    expect(batch.staleWon).toEqual(['k']);
  });

  it('reads a placeholder (no bytes, flags 0) as a miss in plain reads, text or meta', () => {
    const { sink, parser } = setup();
    const text = sink.ask(REPLY_GET, 'k');
    const meta = sink.ask(REPLY_MG, 'k');
    parser.feed(Buffer.from('VALUE k 0 0\r\n\r\nEND\r\nVA 0 f0 Z\r\n\r\n'));
    expect(text.value).toBeUndefined();
    expect(meta.value).toBeUndefined();
    expect(sink.queue).toEqual([]);
  });

  it('counts off a VA over maxValueSize unread, as a miss, and stays in step', () => {
    const { sink, parser } = setup();
    const big = 'x'.repeat(MAX_VALUE + 500);
    const one = sink.ask(REPLY_MG, 'big');
    const lease = sink.ask(REPLY_MG_LEASE, 'big');
    const batch = sink.ask(REPLY_MG_BATCH, ['a', 'big']);
    const after = sink.ask(REPLY_MG, 'a');
    const bytes = Buffer.from(
      va('big', big) +
        va('big', big, ' c9 t5 W') +
        va('a', '1', ' ka') +
        va('big', big, ' kbig') +
        'MN\r\n' +
        va('a', 'after'),
    );
    for (let i = 0; i < bytes.length; i += 7) parser.feed(bytes.subarray(i, i + 7));
    expect([one.value, one.oversized]).toEqual([undefined, 1]);
    expect(lease).toMatchObject({ value: undefined, oversized: 1, state: META_WIN, cas: '9' });
    expect(batch.values).toEqual(['1', undefined]);
    expect(after.value).toBe('after');
    expect(sink.queue).toEqual([]);
  });

  it('hands ERROR to version, mn and the meta commands (no meta protocol), in step', () => {
    const { sink, parser } = setup();
    for (const kind of <ReplyKind[]>[
      REPLY_VERSION,
      REPLY_NOOP,
      REPLY_MG,
      REPLY_MG_LEASE,
      REPLY_MD,
    ]) {
      sink.ask(kind, 'k');
    }
    const batch = sink.ask(REPLY_MG_BATCH, ['k']);
    parser.feed(Buffer.from('ERROR\r\n'.repeat(6)));
    expect(sink.done.map((d) => d.refused)).toEqual(Array(6).fill('ERROR'));
    expect(batch).toBe(sink.done[5].reply);
  });

  it('throws on ERROR to ms, after handing it over: the member reads the value as commands', () => {
    const { sink, parser } = setup();
    sink.ask(REPLY_MS, 'k');
    expect(() => parser.feed(Buffer.from('ERROR\r\n'))).toThrow(ProtocolViolation);
    expect(sink.done[0].refused).toBe('ERROR');
  });

  it('keeps a quiet batch in step through a SERVER_ERROR until its MN', () => {
    const { sink, parser } = setup();
    const batch = sink.ask(REPLY_MG_BATCH, ['a', 'b']);
    const after = sink.ask(REPLY_MG, 'a');
    parser.feed(
      Buffer.from('SERVER_ERROR out of memory\r\n' + va('b', '2', ' kb') + 'MN\r\n' + va('a', '1')),
    );
    expect(batch.refusal).toBe('SERVER_ERROR out of memory');
    expect(sink.done[0].status).toBe('MN');
    expect(after.value).toBe('1');
  });

  const violations: Array<[string, string, ReplyKind, string | string[]]> = [
    ['a flag not asked for', 'VA 1 f0 s1\r\nx\r\n', REPLY_MG, 'k'],
    ['CAS where none was asked', 'VA 1 f0 c1\r\nx\r\n', REPLY_MG, 'k'],
    ['a flag twice', 'VA 1 f0 f0\r\nx\r\n', REPLY_MG, 'k'],
    ['W twice', 'VA 1 f0 W W\r\nx\r\n', REPLY_MG, 'k'],
    ['W with a token', 'VA 1 f0 W1\r\nx\r\n', REPLY_MG, 'k'],
    ['no client flags', 'VA 1\r\nx\r\n', REPLY_MG, 'k'],
    ['a lease without CAS', 'VA 1 f0 t5\r\nx\r\n', REPLY_MG_LEASE, 'k'],
    ['a lease without TTL', 'VA 1 f0 c5\r\nx\r\n', REPLY_MG_LEASE, 'k'],
    ['a CAS over 64 bits', 'VA 1 f0 c18446744073709551616 t1\r\nx\r\n', REPLY_MG_LEASE, 'k'],
    ['a CAS with a leading zero', 'VA 1 f0 c01 t1\r\nx\r\n', REPLY_MG_LEASE, 'k'],
    ['a negative TTL other than -1', 'VA 1 f0 c1 t-2\r\nx\r\n', REPLY_MG_LEASE, 'k'],
    ['flags over 32 bits', 'VA 1 f4294967296\r\nx\r\n', REPLY_MG, 'k'],
    ['a double space', 'VA 1  f0\r\nx\r\n', REPLY_MG, 'k'],
    ['a trailing space', 'VA 1 f0 \r\nx\r\n', REPLY_MG, 'k'],
    ['an impossible length', 'VA 2000000000 f0\r\n', REPLY_MG, 'k'],
    ['a length that is no number', 'VA x f0\r\n', REPLY_MG, 'k'],
    ['data not followed by CRLF', 'VA 1 f0\r\nxyz\r\n', REPLY_MG, 'k'],
    ['a batch value without its key', 'VA 1 f0\r\nx\r\nMN\r\n', REPLY_MG_BATCH, ['k']],
    ['a batch value for a key not asked', 'VA 1 f0 kz\r\nx\r\nMN\r\n', REPLY_MG_BATCH, ['k']],
    [
      'batch keys out of order',
      'VA 1 f0 kb\r\nx\r\nVA 1 f0 ka\r\nx\r\n',
      REPLY_MG_BATCH,
      ['a', 'b'],
    ],
    ['EN in a quiet batch', 'EN\r\nMN\r\n', REPLY_MG_BATCH, ['k']],
    ['HD for a meta get', 'HD\r\n', REPLY_MG, 'k'],
    ['EN with a flag', 'EN k\r\n', REPLY_MG, 'k'],
    ['VA for a text get', 'VA 1 f0\r\nx\r\n', REPLY_GET, 'k'],
    ['VALUE for a meta get', 'VALUE k 0 1\r\nx\r\nEND\r\n', REPLY_MG, 'k'],
    ['HD for a text delete', 'HD\r\n', REPLY_DELETE, 'k'],
    ['NS for md', 'NS\r\n', REPLY_MD, 'k'],
    ['MN for ms', 'MN\r\n', REPLY_MS, 'k'],
    ['a garbled VERSION', 'VERSION \x01\r\n', REPLY_VERSION, ''],
    ['a VERSION for a get', 'VERSION 1.6.18\r\n', REPLY_MG, 'k'],
    ['CLIENT_ERROR to a meta get', 'CLIENT_ERROR bad command line format\r\n', REPLY_MG, 'k'],
    [
      'a JSON value that does not parse',
      `VA 2 f${flagsFor('k', TYPE_JSON)}\r\n{x\r\n`,
      REPLY_MG,
      'k',
    ],
  ];

  it.each(violations)('throws a protocol violation on %s', (_, reply, kind, keys) => {
    const { sink, parser } = setup();
    sink.ask(kind, keys);
    expect(() => parser.feed(Buffer.from(reply))).toThrow(ProtocolViolation);
    expect(() => parser.feed(Buffer.from('MN\r\n'))).toThrow(ProtocolViolation);
  });
});
