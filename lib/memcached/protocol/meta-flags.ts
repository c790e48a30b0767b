/**
 * The return flags of memcached's meta replies (`VA <size> <flags>*`), read strictly: only the
 * flags the command asked for, each at most once, every token well-formed. memcached echoes the
 * asked flags in the order asked and appends W, X and Z in no fixed order; order is not checked.
 */

/** Return flags a meta get may carry without asking (`doc/protocol.txt`, "Meta Get"). */
export const META_WIN = 1;
export const META_STALE = 2;
export const META_PENDING = 4;

/** Flags a command asks for (bit per letter). */
export const ASK_F = 1 << 3;
export const ASK_C = 1 << 4;
export const ASK_T = 1 << 5;
export const ASK_K = 1 << 6;

/** The largest CAS memcached hands out (a 64-bit unsigned integer), as a decimal string. */
const MAX_CAS = '18446744073709551615';
/** memcached's TTL is a 32-bit signed count of seconds. */
const MAX_TTL = 2_147_483_647;

/** What one meta header said; one instance per parser, overwritten by each header. */
export class MetaHeader {
  /** Client flags (`f`), -1 when absent. */
  flags = -1;
  /** CAS (`c`) as decimal digits, '' when absent. */
  cas = '';
  /** Remaining TTL (`t`) in seconds, -1 for none; -2 when absent. */
  ttl = -2;
  /** Where the key token (`k`) lies in the buffer, or -1. */
  keyStart = -1;
  keyEnd = -1;
  /** `META_WIN | META_STALE | META_PENDING`. */
  state = 0;
}

/** Why `readMetaFlags` refused a header; undefined when it is well-formed. */
export type MetaFlagsProblem = string | undefined;

/**
 * Read the flags of `buf[start, end)` (the part after `VA <size>`, starting with a space or
 * empty) into `out`. `asked` is the `ASK_*` set the command sent; every asked flag must be there.
 */
export function readMetaFlags(
  buf: Buffer,
  start: number,
  end: number,
  asked: number,
  out: MetaHeader,
): MetaFlagsProblem {
  out.flags = -1;
  out.cas = '';
  out.ttl = -2;
  out.keyStart = out.keyEnd = -1;
  out.state = 0;
  let seen = 0;
  let pos = start;
  while (pos < end) {
    if (buf[pos] !== SPACE || pos + 1 >= end) return 'a stray space';
    const tokenStart = pos + 1;
    let tokenEnd = buf.indexOf(SPACE, tokenStart);
    if (tokenEnd < 0 || tokenEnd > end) tokenEnd = end;
    const letter = buf[tokenStart];
    const valueStart = tokenStart + 1;
    let bit: number;
    switch (letter) {
      case 0x66: // f
        bit = ASK_F;
        out.flags = decimal(buf, valueStart, tokenEnd, 0xffffffff);
        if (out.flags < 0) return 'impossible client flags';
        break;
      case 0x63: // c
        bit = ASK_C;
        if (!isCas(buf, valueStart, tokenEnd)) return 'an impossible CAS';
        out.cas = buf.toString('latin1', valueStart, tokenEnd);
        break;
      case 0x74: // t
        bit = ASK_T;
        out.ttl =
          tokenEnd - valueStart === 2 && buf[valueStart] === MINUS && buf[valueStart + 1] === ONE
            ? -1
            : decimal(buf, valueStart, tokenEnd, MAX_TTL);
        if (out.ttl === -2) return 'an impossible TTL';
        break;
      case 0x6b: // k
        bit = ASK_K;
        if (tokenEnd === valueStart) return 'an empty key';
        out.keyStart = valueStart;
        out.keyEnd = tokenEnd;
        break;
      case 0x57: // W
        bit = META_WIN;
        break;
      case 0x58: // X
        bit = META_STALE;
        break;
      case 0x5a: // Z
        bit = META_PENDING;
        break;
      default:
        return 'a flag not asked for';
    }
    if (bit <= META_PENDING) {
      if (tokenEnd !== valueStart) return 'a W, X or Z flag with a token';
      out.state |= bit;
    } else if ((asked & bit) === 0) {
      return 'a flag not asked for';
    }
    if ((seen & bit) !== 0) return 'a flag twice';
    seen |= bit;
    pos = tokenEnd;
  }
  if ((seen & asked) !== asked) return 'a flag asked for is missing';
  return undefined;
}

const SPACE = 32;
const MINUS = 45;
const ONE = 49;

/** The decimal in `buf[start, end)`, at most `max`; -2 when it is not one (or too large). */
function decimal(buf: Buffer, start: number, end: number, max: number): number {
  if (end <= start || end - start > 10) return -2;
  let n = 0;
  for (let i = start; i < end; i++) {
    const digit = buf[i] - 48;
    if (digit < 0 || digit > 9) return -2;
    n = n * 10 + digit;
  }
  return n > max ? -2 : n;
}

/** 1 to 20 digits, no leading zero (but `0`), at most 2^64 - 1. */
function isCas(buf: Buffer, start: number, end: number): boolean {
  const length = end - start;
  if (length < 1 || length > MAX_CAS.length) return false;
  if (length > 1 && buf[start] === 48) return false;
  for (let i = start; i < end; i++) if (buf[i] < 48 || buf[i] > 57) return false;
  return length < MAX_CAS.length || buf.toString('latin1', start, end) <= MAX_CAS;
}
