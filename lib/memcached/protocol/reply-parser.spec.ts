import { describe, expect, it } from 'vitest';
import { flagsFor, TYPE_BINARY, TYPE_JSON, TYPE_NUMERIC, TYPE_STRING } from './key-check.js';
import { QueueSink } from '../../../test/support/reply-queue.js';
import type { ReplyKind } from './reply-parser.js';
import {
  MAX_LINE,
  ProtocolViolation,
  REPLY_DELETE,
  REPLY_GET,
  REPLY_STATS,
  REPLY_STORE,
  ReplyParser,
} from './reply-parser.js';

const MAX_VALUE = 1000;

function setup(): { sink: QueueSink; parser: ReplyParser } {
  const sink = new QueueSink();
  return { sink, parser: new ReplyParser(sink, MAX_VALUE) };
}

function valueReply(key: string, data: string, flags = flagsFor(key, TYPE_STRING)): string {
  return `VALUE ${key} ${flags} ${Buffer.byteLength(data)}\r\n${data}\r\n`;
}

describe('ReplyParser', () => {
  it('completes commands in order with the shape each expects', () => {
    const { sink, parser } = setup();
    const one = sink.ask(REPLY_GET, 'a');
    const many = sink.ask(REPLY_GET, ['a', 'b', 'c']);
    sink.ask(REPLY_STORE, 'a');
    sink.ask(REPLY_DELETE, 'a');
    const stats = sink.ask(REPLY_STATS);
    parser.feed(
      Buffer.from(
        valueReply('a', 'héllo') +
          'END\r\n' +
          valueReply('a', '1') +
          valueReply('c', '3') +
          'END\r\nNOT_STORED\r\nNOT_FOUND\r\nSTAT uptime 42\r\nSTAT pid 7\r\nEND\r\n',
      ),
    );
    expect(one.value).toBe('héllo');
    expect(many.values).toEqual(['1', undefined, '3']);
    expect(stats.stats).toEqual([
      ['uptime', '42'],
      ['pid', '7'],
    ]);
    expect(sink.done.map((d) => d.status)).toEqual([
      'END',
      'END',
      'NOT_STORED',
      'NOT_FOUND',
      'END',
    ]);
    expect(sink.queue).toEqual([]);
  });

  it('reads a reply cut at every byte the same as in one piece', () => {
    const bytes = Buffer.from(valueReply('key', 'x'.repeat(50)) + 'END\r\nSTORED\r\n');
    for (let cut = 1; cut < bytes.length; cut++) {
      const { sink, parser } = setup();
      const get = sink.ask(REPLY_GET, 'key');
      sink.ask(REPLY_STORE, 'key');
      parser.feed(bytes.subarray(0, cut));
      parser.feed(bytes.subarray(cut));
      expect(get.value).toBe('x'.repeat(50));
      expect(sink.done.map((d) => d.status)).toEqual(['END', 'STORED']);
    }
  });

  it('decodes the value types memcache-client wrote, and values of older versions (flags 0)', () => {
    const { sink, parser } = setup();
    const get = sink.ask(REPLY_GET, ['j', 'n', 'b', 'old']);
    parser.feed(
      Buffer.from(
        valueReply('j', '{"a":1}', flagsFor('j', TYPE_JSON)) +
          valueReply('n', '12.5', flagsFor('n', TYPE_NUMERIC)) +
          valueReply('b', 'raw', flagsFor('b', TYPE_BINARY)) +
          valueReply('old', 'legacy', 0) +
          'END\r\n',
      ),
    );
    expect(get.values).toEqual([{ a: 1 }, 12.5, Buffer.from('raw'), 'legacy']);
  });

  it('reads a value carrying another key’s check as a miss, and counts it', () => {
    const { sink, parser } = setup();
    const get = sink.ask(REPLY_GET, 'mine');
    parser.feed(
      Buffer.from(valueReply('mine', 'theirs', flagsFor('theirs', TYPE_STRING)) + 'END\r\n'),
    );
    expect(get.value).toBeUndefined();
    expect(get.keyMismatches).toBe(1);
    expect(sink.done).toHaveLength(1);
  });

  it('hands SERVER_ERROR to the command it answers and stays in step', () => {
    const { sink, parser } = setup();
    sink.ask(REPLY_STORE, 'a');
    const get = sink.ask(REPLY_GET, 'a');
    parser.feed(
      Buffer.from(
        'SERVER_ERROR out of memory storing object\r\n' + valueReply('a', 'v') + 'END\r\n',
      ),
    );
    expect(sink.done[0].refused).toBe('SERVER_ERROR out of memory storing object');
    expect(get.value).toBe('v');
  });

  const violations: Array<[string, string, ReplyKind, string | string[]]> = [
    ['an unknown line', 'constructor\r\n', REPLY_GET, 'k'],
    ['a number for a get (incr reply)', 'HELLO2\r\n', REPLY_GET, 'k'],
    ['a negative length', 'VALUE k 0 -1\r\n', REPLY_GET, 'k'],
    ['a VALUE without length', 'VALUE k 0\r\n', REPLY_GET, 'k'],
    ['a length of 5,000,000,000', 'VALUE k 0 5000000000\r\n', REPLY_GET, 'k'],
    ["a length over memcached's 1 GiB item limit", 'VALUE k 0 2000000000\r\n', REPLY_GET, 'k'],
    [
      'an oversized value not followed by CRLF',
      `VALUE k 0 ${MAX_VALUE + 100}\r\n${'x'.repeat(MAX_VALUE + 102)}`,
      REPLY_GET,
      'k',
    ],
    ['a key not asked', 'VALUE other 0 1\r\nx\r\nEND\r\n', REPLY_GET, 'k'],
    [
      'a key asked twice in one reply',
      'VALUE k 0 1\r\nx\r\nVALUE k 0 1\r\nx\r\nEND\r\n',
      REPLY_GET,
      'k',
    ],
    ['keys out of order', 'VALUE b 0 1\r\nx\r\nVALUE a 0 1\r\nx\r\nEND\r\n', REPLY_GET, ['a', 'b']],
    ['data not followed by CRLF', 'VALUE k 0 1\r\nxyz\r\n', REPLY_GET, 'k'],
    ['an unsolicited END', 'END\r\nEND\r\n', REPLY_GET, 'k'],
    ['an unsolicited STAT', 'STAT pid 1\r\n', REPLY_GET, 'k'],
    ['STORED for a get', 'STORED\r\n', REPLY_GET, 'k'],
    ['END for a set', 'END\r\n', REPLY_STORE, 'k'],
    ['DELETED for a set', 'DELETED\r\n', REPLY_STORE, 'k'],
    ['ERROR', 'ERROR\r\n', REPLY_DELETE, 'k'],
    ['CLIENT_ERROR', 'CLIENT_ERROR bad data chunk\r\n', REPLY_STORE, 'k'],
    ['garbage after SERVER_ERROR', 'SERVER_ERROR \x00\x01\r\n', REPLY_GET, 'k'],
    ['a bare CR', 'END\rX\r\n', REPLY_GET, 'k'],
    [
      'a JSON value that does not parse',
      `VALUE k ${flagsFor('k', TYPE_JSON)} 2\r\n{x\r\nEND\r\n`,
      REPLY_GET,
      'k',
    ],
  ];

  it.each(violations)('throws a protocol violation on %s', (_, reply, kind, keys) => {
    const { sink, parser } = setup();
    sink.ask(kind, keys);
    expect(() => parser.feed(Buffer.from(reply))).toThrow(ProtocolViolation);
    // Dead from then on: the connection is closed, nothing more is read.
    expect(() => parser.feed(Buffer.from('END\r\n'))).toThrow(ProtocolViolation);
  });

  it('throws on a line that never ends, once it is longer than the bound', () => {
    const { sink, parser } = setup();
    sink.ask(REPLY_GET, 'k');
    parser.feed(Buffer.alloc(MAX_LINE, 'a'));
    expect(() => parser.feed(Buffer.alloc(10, 'a'))).toThrow(ProtocolViolation);
  });

  it('skips a value over maxValueSize unread: a miss, counted, and the next replies still read', () => {
    const { sink, parser } = setup();
    const big = 'x'.repeat(MAX_VALUE + 500);
    const one = sink.ask(REPLY_GET, 'big');
    const many = sink.ask(REPLY_GET, ['a', 'big', 'c']);
    const after = sink.ask(REPLY_GET, 'a');
    const bytes = Buffer.from(
      valueReply('big', big) +
        'END\r\n' +
        valueReply('a', '1') +
        valueReply('big', big) +
        valueReply('c', '3') +
        'END\r\n' +
        valueReply('a', 'after') +
        'END\r\n',
    );
    // Cut in small pieces: the count-off crosses chunk boundaries, its CRLF too.
    for (let i = 0; i < bytes.length; i += 7) parser.feed(bytes.subarray(i, i + 7));
    expect(one.value).toBeUndefined();
    expect(one.oversized).toBe(1);
    expect(many.values).toEqual(['1', undefined, '3']);
    expect(many.oversized).toBe(1);
    expect(after.value).toBe('after');
    expect(after.oversized).toBe(0);
    expect(sink.queue).toEqual([]);
  });

  it("allocates nothing for an oversized value, whatever its length (up to memcached's limit)", () => {
    const { sink, parser } = setup();
    const get = sink.ask(REPLY_GET, 'k');
    const chunk = Buffer.alloc(65_536, 'x');
    const before = process.memoryUsage().arrayBuffers;
    parser.feed(Buffer.from('VALUE k 0 1000000000\r\n'));
    for (let i = 0; i < 100; i++) parser.feed(chunk);
    // 6.5 MB of the value went through; none of it was kept.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(2_000_000);
    expect(get.value).toBeUndefined();
    expect(sink.done).toEqual([]);
  });

  it('keeps only the bytes of a value that arrived, whatever its header announced', () => {
    const sink = new QueueSink();
    const parser = new ReplyParser(sink, 100_000_000);
    const get = sink.ask(REPLY_GET, 'k');
    const before = process.memoryUsage().arrayBuffers;
    parser.feed(Buffer.from('VALUE k 0 99999999\r\nabc'));
    // Nothing near 100 MB was reserved for the announced value.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(10_000_000);
    expect(get.value).toBeUndefined();
    expect(sink.done).toEqual([]);
  });
});
