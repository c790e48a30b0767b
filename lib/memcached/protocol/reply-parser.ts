import {
  FLAGS_MISMATCH,
  FLAGS_UNREADABLE,
  TYPE_BINARY,
  TYPE_JSON,
  TYPE_NUMERIC,
  keyHash,
  typeOfFlags,
} from './key-check.js';

/** The reply a command waits for. */
export const REPLY_GET = 0;
export const REPLY_STORE = 1;
export const REPLY_DELETE = 2;
export const REPLY_STATS = 3;
export type ReplyKind =
  typeof REPLY_GET | typeof REPLY_STORE | typeof REPLY_DELETE | typeof REPLY_STATS;

/**
 * A command waiting for its reply, as the parser sees it; the parser fills in what it reads.
 * A get of one key names it in `key`; a multi-get names its keys in `keys`, in the order sent.
 */
export interface PendingReply {
  readonly kind: ReplyKind;
  readonly key: string;
  readonly keys: readonly string[] | undefined;
  /** Single get: the value found (undefined: miss). */
  value: unknown;
  /** Multi-get: values aligned with `keys` (filled by the parser; undefined: miss). */
  values: unknown[] | undefined;
  /** Values whose key check did not match the key asked (read as misses). */
  keyMismatches: number;
  /** Values over `maxValueSize`, skipped unread (read as misses). */
  oversized: number;
  /** Stats: `[name, value]` pairs. */
  stats: Array<[string, string]> | undefined;
}

/** Where complete replies go, oldest command first. */
export interface ReplySink {
  /** The oldest command still waiting; undefined when none is. */
  head(): PendingReply | undefined;
  /** The head's reply is complete: `status` is the status line (`END`, `STORED`, `NOT_FOUND`, …). */
  complete(status: string): void;
  /** The head was refused with an error reply that keeps the stream in step (`SERVER_ERROR …`). */
  refuse(line: string): void;
}

/** A reply that cannot come from a well-behaved memcached: the connection cannot be trusted. */
export class ProtocolViolation extends Error {}

/** Longest reply line without its end (a VALUE line with a 250-byte key is about 290). */
export const MAX_LINE = 2048;
/** Bytes a value may exceed `maxValueSize` by (what the store measures is the value it sends). */
export const VALUE_SLACK = 64;
/** memcached's largest item (`-I` at most 1 GiB): a longer VALUE cannot come from a memcached. */
export const MEMCACHED_MAX_ITEM = 1024 * 1024 * 1024;
/** STAT lines in one stats reply. */
const MAX_STATS = 1000;

const CR = 13;
const LF = 10;
const CRLF = (CR << 8) | LF;
const SPACE = 32;
const EMPTY = Buffer.alloc(0);

/**
 * A strict, incremental parser of memcached's text replies for one connection. Bytes go in with
 * `feed`; each complete reply is matched against the oldest waiting command (`sink.head()`) and
 * must have that command's shape: a get yields VALUE lines for the keys it asked, in order, then
 * END; a store STORED / NOT_STORED / EXISTS / NOT_FOUND; a delete DELETED / NOT_FOUND; stats STAT
 * lines then END. `SERVER_ERROR <text>` refuses any command. Anything else (an unknown line, a
 * reply nobody asked for, a VALUE header with an impossible length or another key, data not
 * followed by CRLF, a line longer than `MAX_LINE`) throws `ProtocolViolation`; the parser is
 * dead from then on (the connection is to be closed).
 *
 * Memory: a value's bytes are kept only as they arrive, never reserved from its header. A value
 * longer than `maxValueSize + VALUE_SLACK` (one another process wrote under a larger limit) is
 * counted off unread and reads as a miss (`oversized`); a header announcing more than memcached
 * can hold (`MEMCACHED_MAX_ITEM`) is a protocol violation.
 */
export class ReplyParser {
  private readonly maxValue: number;
  /** Unparsed bytes of a line cut by a chunk boundary. */
  private partial: Buffer = EMPTY;
  /** Value being read: its bytes so far, and how many (data plus CRLF) are still due. */
  private parts: Buffer[] = [];
  private due = 0;
  /** The value being read is over the limit: its bytes are counted off, not kept. */
  private skipping = false;
  /** While skipping: the last two bytes seen (they must be CRLF). */
  private tail = 0;
  private valueFlags = 0;
  private valueHash = 0;
  /** Multi-get: index in `keys` of the value being read, and where the next VALUE may start. */
  private valueIndex = 0;
  private cursor = 0;
  private dead: ProtocolViolation | undefined;

  constructor(
    private readonly sink: ReplySink,
    maxValueSize: number,
  ) {
    this.maxValue = maxValueSize + VALUE_SLACK;
  }

  /** Parse `chunk`; throws `ProtocolViolation` at the first impossible byte. */
  feed(chunk: Buffer): void {
    if (this.dead) throw this.dead;
    try {
      this.parse(chunk);
    } catch (error) {
      this.dead =
        error instanceof ProtocolViolation
          ? error
          : new ProtocolViolation(`unreadable reply (${String(error)})`);
      throw this.dead;
    }
  }

  private parse(chunk: Buffer): void {
    let buf = chunk;
    let pos = 0;
    if (this.due > 0) {
      pos = this.readValue(chunk, 0);
      if (this.due > 0) return;
    } else if (this.partial.length > 0) {
      buf = Buffer.concat([this.partial, chunk]);
      this.partial = EMPTY;
    }
    const length = buf.length;
    while (pos < length) {
      const cr = buf.indexOf(CR, pos);
      if (cr < 0 || cr + 1 >= length) {
        if (length - pos > MAX_LINE) throw new ProtocolViolation('a reply line without its end');
        this.partial = Buffer.from(buf.subarray(pos));
        return;
      }
      if (buf[cr + 1] !== LF) throw new ProtocolViolation('a carriage return without line feed');
      if (cr - pos > MAX_LINE) throw new ProtocolViolation('a reply line too long');
      const next = cr + 2;
      if (this.line(buf, pos, cr)) {
        pos = this.readValue(buf, next);
        if (this.due > 0) return;
      } else {
        pos = next;
      }
    }
  }

  /** Handle the line `buf[start, end)`; true when value bytes follow it. */
  private line(buf: Buffer, start: number, end: number): boolean {
    const head = this.sink.head();
    if (head === undefined)
      throw new ProtocolViolation(`a reply nobody asked for: ${show(buf, start, end)}`);
    const kind = head.kind;
    switch (buf[start]) {
      case 0x56: // V
        if (kind === REPLY_GET && startsWith(buf, start, end, VALUE)) {
          this.valueHeader(head, buf, start + VALUE.length, end);
          return true;
        }
        break;
      case 0x45: // E
        if (is(buf, start, end, END) && (kind === REPLY_GET || kind === REPLY_STATS)) {
          this.cursor = 0;
          this.sink.complete('END');
          return false;
        }
        if (is(buf, start, end, EXISTS) && kind === REPLY_STORE) return this.status('EXISTS');
        break;
      case 0x53: // S
        if (is(buf, start, end, STORED) && kind === REPLY_STORE) return this.status('STORED');
        if (startsWith(buf, start, end, STAT) && kind === REPLY_STATS) {
          this.stat(head, buf, start + STAT.length, end);
          return false;
        }
        if (startsWith(buf, start, end, SERVER_ERROR)) {
          const text = buf.toString('latin1', start, end);
          if (!/^SERVER_ERROR [\x20-\x7e]{1,200}$/.test(text)) {
            throw new ProtocolViolation(`garbled error reply: ${show(buf, start, end)}`);
          }
          this.cursor = 0;
          this.sink.refuse(text);
          return false;
        }
        break;
      case 0x4e: // N
        if (is(buf, start, end, NOT_STORED) && kind === REPLY_STORE)
          return this.status('NOT_STORED');
        if (is(buf, start, end, NOT_FOUND) && (kind === REPLY_STORE || kind === REPLY_DELETE)) {
          return this.status('NOT_FOUND');
        }
        break;
      case 0x44: // D
        if (is(buf, start, end, DELETED) && kind === REPLY_DELETE) return this.status('DELETED');
        break;
    }
    throw new ProtocolViolation(`an unexpected reply line: ${show(buf, start, end)}`);
  }

  private status(status: string): false {
    this.sink.complete(status);
    return false;
  }

  /** `<key> <flags> <bytes>` of a VALUE line: checked against the keys asked, length bounded. */
  private valueHeader(head: PendingReply, buf: Buffer, start: number, end: number): void {
    const keyEnd = buf.indexOf(SPACE, start);
    if (keyEnd < 0 || keyEnd >= end) throw new ProtocolViolation('a VALUE line without flags');
    const flagsEnd = buf.indexOf(SPACE, keyEnd + 1);
    if (flagsEnd < 0 || flagsEnd >= end) throw new ProtocolViolation('a VALUE line without length');
    const flags = decimal(buf, keyEnd + 1, flagsEnd, 0xffffffff);
    const bytes = decimal(buf, flagsEnd + 1, end, MEMCACHED_MAX_ITEM);
    if (flags < 0 || bytes < 0) {
      throw new ProtocolViolation(
        `a VALUE line with an impossible number: ${show(buf, start, end)}`,
      );
    }
    const keys = head.keys;
    if (keys === undefined) {
      if (this.cursor > 0 || !sameKey(buf, start, keyEnd, head.key)) {
        throw new ProtocolViolation(`a VALUE for a key not asked: ${show(buf, start, keyEnd)}`);
      }
      this.cursor = 1;
    } else {
      let i = this.cursor;
      while (i < keys.length && !sameKey(buf, start, keyEnd, keys[i])) i++;
      if (i === keys.length) {
        throw new ProtocolViolation(`a VALUE for a key not asked: ${show(buf, start, keyEnd)}`);
      }
      this.valueIndex = i;
      this.cursor = i + 1;
    }
    this.valueFlags = flags;
    this.valueHash = keyHash(keys === undefined ? head.key : keys[this.valueIndex]);
    this.due = bytes + 2;
    this.skipping = bytes > this.maxValue;
  }

  /** Take the value's bytes from `buf` at `pos`; returns where the next line starts. */
  private readValue(buf: Buffer, pos: number): number {
    if (this.skipping) return this.skipValue(buf, pos);
    const available = buf.length - pos;
    if (available < this.due) {
      if (available > 0) this.parts.push(Buffer.from(buf.subarray(pos)));
      this.due -= available;
      return buf.length;
    }
    const end = pos + this.due;
    this.due = 0;
    let data = buf;
    let dataStart = pos;
    let dataEnd = end - 2;
    if (this.parts.length > 0) {
      // The value came in several chunks: one copy of its bytes, made only now they are all here.
      this.parts.push(buf.subarray(pos, end));
      data = Buffer.concat(this.parts);
      this.parts = [];
      dataStart = 0;
      dataEnd = data.length - 2;
    }
    if (data[dataEnd] !== CR || data[dataEnd + 1] !== LF) {
      throw new ProtocolViolation('value data not followed by CRLF');
    }
    const head = this.sink.head();
    if (head === undefined) throw new ProtocolViolation('a value for a command that ended');
    this.store(head, data, dataStart, dataEnd);
    return end;
  }

  /** `readValue` for a value over the limit: its bytes are counted, never kept. */
  private skipValue(buf: Buffer, pos: number): number {
    const end = Math.min(buf.length, pos + this.due);
    // The last two bytes seen so far, across chunks: they end up being the value's terminator.
    for (let i = Math.max(pos, end - 2); i < end; i++)
      this.tail = ((this.tail << 8) | buf[i]) & 0xffff;
    this.due -= end - pos;
    if (this.due > 0) return end;
    this.skipping = false;
    if (this.tail !== CRLF) throw new ProtocolViolation('value data not followed by CRLF');
    const head = this.sink.head();
    if (head === undefined) throw new ProtocolViolation('a value for a command that ended');
    head.oversized++;
    return end;
  }

  private store(head: PendingReply, data: Buffer, start: number, end: number): void {
    const type = typeOfFlags(this.valueFlags, this.valueHash);
    let value: unknown;
    if (type === FLAGS_MISMATCH) {
      head.keyMismatches++;
      return;
    }
    if (type === FLAGS_UNREADABLE) return;
    if (type === TYPE_BINARY) value = Buffer.from(data.subarray(start, end));
    else {
      const text = data.toString('utf8', start, end);
      if (type === TYPE_JSON) value = JSON.parse(text) as unknown;
      else if (type === TYPE_NUMERIC) value = Number(text);
      else value = text;
    }
    if (head.keys === undefined) head.value = value;
    else head.values![this.valueIndex] = value;
  }

  private stat(head: PendingReply, buf: Buffer, start: number, end: number): void {
    const stats = (head.stats ??= []);
    if (stats.length >= MAX_STATS) throw new ProtocolViolation('too many STAT lines');
    const text = buf.toString('latin1', start, end);
    const space = text.indexOf(' ');
    if (space <= 0 || !/^[\x20-\x7e]*$/.test(text)) {
      throw new ProtocolViolation(`a garbled STAT line: ${show(buf, start, end)}`);
    }
    stats.push([text.slice(0, space), text.slice(space + 1)]);
  }
}

const VALUE = Buffer.from('VALUE ');
const END = Buffer.from('END');
const EXISTS = Buffer.from('EXISTS');
const STORED = Buffer.from('STORED');
const STAT = Buffer.from('STAT ');
const SERVER_ERROR = Buffer.from('SERVER_ERROR ');
const NOT_STORED = Buffer.from('NOT_STORED');
const NOT_FOUND = Buffer.from('NOT_FOUND');
const DELETED = Buffer.from('DELETED');

function startsWith(buf: Buffer, start: number, end: number, word: Buffer): boolean {
  if (end - start < word.length) return false;
  for (let i = 0; i < word.length; i++) if (buf[start + i] !== word[i]) return false;
  return true;
}

function is(buf: Buffer, start: number, end: number, word: Buffer): boolean {
  return end - start === word.length && startsWith(buf, start, end, word);
}

function sameKey(buf: Buffer, start: number, end: number, key: string): boolean {
  if (end - start !== key.length) return false;
  for (let i = 0; i < key.length; i++) if (buf[start + i] !== key.charCodeAt(i)) return false;
  return true;
}

/** The decimal in `buf[start, end)`, at most `max`; -1 when it is not one (or too large). */
function decimal(buf: Buffer, start: number, end: number, max: number): number {
  if (end <= start || end - start > 10) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const digit = buf[i] - 48;
    if (digit < 0 || digit > 9) return -1;
    n = n * 10 + digit;
  }
  return n > max ? -1 : n;
}

/** A bounded, printable excerpt of a reply line for error messages. */
function show(buf: Buffer, start: number, end: number): string {
  const text = buf.toString('latin1', start, Math.min(end, start + 60));
  return JSON.stringify(text.replace(/[^\x20-\x7e]/g, '?') + (end - start > 60 ? '…' : ''));
}
