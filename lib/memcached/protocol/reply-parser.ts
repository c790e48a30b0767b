import {
  FLAGS_MISMATCH,
  FLAGS_UNREADABLE,
  TYPE_BINARY,
  TYPE_JSON,
  TYPE_NUMERIC,
  keyHash,
  typeOfFlags,
} from './key-check.js';
import {
  ASK_C,
  ASK_F,
  ASK_K,
  ASK_T,
  META_STALE,
  META_WIN,
  MetaHeader,
  readMetaFlags,
} from './meta-flags.js';

/** The reply a command waits for: text commands first, then the meta commands. */
export const REPLY_GET = 0;
export const REPLY_STORE = 1;
export const REPLY_DELETE = 2;
export const REPLY_STATS = 3;
/** `version`: `VERSION <text>`, or `ERROR` from a member that has no such command. */
export const REPLY_VERSION = 4;
/** `mn`: `MN`, or `ERROR` from a member without the meta protocol. */
export const REPLY_NOOP = 5;
/** `mg <key> f v`: `VA` or `EN`. */
export const REPLY_MG = 6;
/** `mg <key> f v c t N… [R…]` (a lease read): `VA` with `c` and `t`, or `EN`. */
export const REPLY_MG_LEASE = 7;
/** `mg <key> f v k q` for each key, then `mn`: `VA` lines for the hits (with `k`), then `MN`. */
export const REPLY_MG_BATCH = 8;
/** `ms`: `HD`, `NS`, `EX` or `NF`. */
export const REPLY_MS = 9;
/** `md`: `HD`, `NF` or `EX`. */
export const REPLY_MD = 10;
export type ReplyKind =
  | typeof REPLY_GET
  | typeof REPLY_STORE
  | typeof REPLY_DELETE
  | typeof REPLY_STATS
  | typeof REPLY_VERSION
  | typeof REPLY_NOOP
  | typeof REPLY_MG
  | typeof REPLY_MG_LEASE
  | typeof REPLY_MG_BATCH
  | typeof REPLY_MS
  | typeof REPLY_MD;

/** The meta kinds: a member that answers them with `ERROR` does not speak the meta protocol. */
export function isMetaKind(kind: ReplyKind): boolean {
  return kind >= REPLY_NOOP;
}

/** A lease read found a placeholder (a vivified item: no value yet), besides `META_*`. */
export const META_PLACEHOLDER = 8;

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
  /** Lease read: `META_WIN | META_STALE | META_PENDING | META_PLACEHOLDER` of its reply. */
  state: number;
  /** Lease read: the item's CAS ('' on a miss). */
  cas: string;
  /** Lease read: the item's remaining TTL in seconds (-1: none; -2: a miss). */
  ttl: number;
  /**
   * Plain meta reads: keys of values marked stale (an invalidation) whose recompute token this
   * read took (W); the token goes back, or no caller would ever recompute them.
   */
  staleWon: string[] | undefined;
  /** A multi-get refused midway (`SERVER_ERROR` before its `MN`): the error line. */
  refusal: string | undefined;
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
 * A strict, incremental parser of memcached's text and meta replies for one connection. Bytes go
 * in with `feed`; each complete reply is matched against the oldest waiting command
 * (`sink.head()`) and must have that command's shape: a get yields VALUE lines for the keys it
 * asked, in order, then END; a store STORED / NOT_STORED / EXISTS / NOT_FOUND; a delete DELETED /
 * NOT_FOUND; stats STAT lines then END; `version` a VERSION line. Meta commands: a meta get `VA`
 * (with exactly the flags it asked for, plus W/X/Z) or `EN`; a quiet meta multi-get `VA` lines for
 * the keys it asked, in order, then `MN`; `ms` HD / NS / EX / NF; `md` HD / NF / EX; `mn` MN.
 * `SERVER_ERROR <text>` refuses any command; `ERROR` refuses `version` and the meta commands (a
 * member without the meta protocol). Anything else (an unknown line, a reply nobody asked for, a
 * header with an impossible length, flag or another key, data not followed by CRLF, a line
 * longer than `MAX_LINE`) throws `ProtocolViolation`; the parser is dead from then on (the
 * connection is to be closed). An `ERROR` to `ms` throws too: the member then reads the value's
 * bytes as commands, and the stream is out of step.
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
  /** A meta value's W/X/Z flags (0 for VALUE). */
  private valueState = 0;
  private readonly header = new MetaHeader();
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
        if (buf[start + 1] === 0x41 && buf[start + 2] === SPACE) {
          // VA: a meta get's value
          if (kind === REPLY_MG || kind === REPLY_MG_LEASE || kind === REPLY_MG_BATCH) {
            this.metaHeader(head, buf, start + 3, end);
            return true;
          }
          break;
        }
        if (kind === REPLY_GET && startsWith(buf, start, end, VALUE)) {
          this.valueHeader(head, buf, start + VALUE.length, end);
          return true;
        }
        if (kind === REPLY_VERSION && startsWith(buf, start, end, VERSION)) {
          const text = buf.toString('latin1', start, end);
          if (!/^VERSION [\x21-\x7e]{1,100}$/.test(text)) {
            throw new ProtocolViolation(`a garbled VERSION line: ${show(buf, start, end)}`);
          }
          return this.status(text);
        }
        break;
      case 0x45: // E
        if (end - start === 2) {
          if (buf[start + 1] === 0x4e && (kind === REPLY_MG || kind === REPLY_MG_LEASE)) {
            return this.status('EN'); // a miss
          }
          if (buf[start + 1] === 0x58 && (kind === REPLY_MS || kind === REPLY_MD)) {
            return this.status('EXISTS');
          }
          break;
        }
        if (is(buf, start, end, END) && (kind === REPLY_GET || kind === REPLY_STATS)) {
          this.cursor = 0;
          this.sink.complete('END');
          return false;
        }
        if (is(buf, start, end, EXISTS) && kind === REPLY_STORE) return this.status('EXISTS');
        if (is(buf, start, end, ERROR) && (kind === REPLY_VERSION || isMetaKind(kind))) {
          // No such command here: the member does not speak the meta protocol.
          this.cursor = 0;
          this.sink.refuse('ERROR');
          if (kind === REPLY_MS) {
            throw new ProtocolViolation('ERROR to ms: the member reads the value as commands');
          }
          return false;
        }
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
          if (kind === REPLY_MG_BATCH) {
            // One of the quiet gets failed; the batch still ends with its MN.
            head.refusal ??= text;
            return false;
          }
          this.cursor = 0;
          this.sink.refuse(text);
          return false;
        }
        break;
      case 0x4e: // N
        if (end - start === 2) {
          if (buf[start + 1] === 0x53 && kind === REPLY_MS) return this.status('NOT_STORED');
          if (buf[start + 1] === 0x46 && (kind === REPLY_MS || kind === REPLY_MD)) {
            return this.status('NOT_FOUND');
          }
          break;
        }
        if (is(buf, start, end, NOT_STORED) && kind === REPLY_STORE)
          return this.status('NOT_STORED');
        if (is(buf, start, end, NOT_FOUND) && (kind === REPLY_STORE || kind === REPLY_DELETE)) {
          return this.status('NOT_FOUND');
        }
        break;
      case 0x44: // D
        if (is(buf, start, end, DELETED) && kind === REPLY_DELETE) return this.status('DELETED');
        break;
      case 0x48: // H
        if (end - start === 2 && buf[start + 1] === 0x44) {
          if (kind === REPLY_MS) return this.status('STORED');
          if (kind === REPLY_MD) return this.status('DELETED');
        }
        break;
      case 0x4d: // M
        if (end - start === 2 && buf[start + 1] === 0x4e) {
          if (kind === REPLY_MG_BATCH) {
            this.cursor = 0;
            return this.status('MN');
          }
          if (kind === REPLY_NOOP) return this.status('MN');
        }
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
    this.valueState = 0;
    this.due = bytes + 2;
    this.skipping = bytes > this.maxValue;
  }

  /**
   * `<size> <flags>*` of a VA line: the flags exactly those asked (plus W/X/Z), a batch's key one
   * it asked (in order), the length bounded as for VALUE.
   */
  private metaHeader(head: PendingReply, buf: Buffer, start: number, end: number): void {
    let sizeEnd = buf.indexOf(SPACE, start);
    if (sizeEnd < 0 || sizeEnd > end) sizeEnd = end;
    const bytes = decimal(buf, start, sizeEnd, MEMCACHED_MAX_ITEM);
    if (bytes < 0) {
      throw new ProtocolViolation(`a VA line with an impossible length: ${show(buf, start, end)}`);
    }
    const kind = head.kind;
    const asked =
      kind === REPLY_MG ? ASK_F : kind === REPLY_MG_LEASE ? ASK_F | ASK_C | ASK_T : ASK_F | ASK_K;
    const header = this.header;
    const problem = readMetaFlags(buf, sizeEnd, end, asked, header);
    if (problem !== undefined) {
      throw new ProtocolViolation(`a VA line with ${problem}: ${show(buf, start - 3, end)}`);
    }
    let key = head.key;
    if (kind === REPLY_MG_BATCH) {
      const keys = head.keys!;
      let i = this.cursor;
      while (i < keys.length && !sameKey(buf, header.keyStart, header.keyEnd, keys[i])) i++;
      if (i === keys.length) {
        throw new ProtocolViolation(
          `a VA for a key not asked: ${show(buf, header.keyStart, header.keyEnd)}`,
        );
      }
      this.valueIndex = i;
      this.cursor = i + 1;
      key = keys[i];
    } else if (kind === REPLY_MG_LEASE) {
      head.state = header.state | (bytes === 0 && header.flags === 0 ? META_PLACEHOLDER : 0);
      head.cas = header.cas;
      head.ttl = header.ttl;
    }
    this.valueFlags = header.flags;
    this.valueHash = keyHash(key);
    this.valueState = header.state;
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
    this.valueDone(head);
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
    if (!this.staleForPlainRead(head)) head.oversized++;
    this.valueDone(head);
    return end;
  }

  /** A single meta get's reply ends with its value (a VALUE's with END, a batch's with MN). */
  private valueDone(head: PendingReply): void {
    if (head.kind === REPLY_MG || head.kind === REPLY_MG_LEASE) this.sink.complete('VA');
  }

  /**
   * A value marked stale (an invalidation) is a miss for a plain read; when the read took its
   * recompute token (W), its key is noted so the token goes back.
   */
  private staleForPlainRead(head: PendingReply): boolean {
    if ((this.valueState & META_STALE) === 0 || head.kind === REPLY_MG_LEASE) return false;
    if ((this.valueState & META_WIN) !== 0) {
      (head.staleWon ??= []).push(head.keys === undefined ? head.key : head.keys[this.valueIndex]);
    }
    return true;
  }

  private store(head: PendingReply, data: Buffer, start: number, end: number): void {
    // A lease's placeholder (memcached's vivified item: no bytes, flags 0) is no value.
    if (end === start && this.valueFlags === 0) return;
    if (this.staleForPlainRead(head)) return;
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
const VERSION = Buffer.from('VERSION ');
const ERROR = Buffer.from('ERROR');
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
