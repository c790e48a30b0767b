import { hash } from 'node:crypto';

/** Longest key memcached accepts, in bytes. */
export const MAX_KEY_LENGTH = 250;

/**
 * First character of an encoded key. A safe key that starts with it is encoded too, so an encoded
 * key can never equal a key passed as is.
 */
export const ENCODED_KEY_MARKER = '~';
const MARKER_CODE = ENCODED_KEY_MARKER.charCodeAt(0);

/**
 * True when memcached can take `key` as is: 1–250 printable ASCII characters (no space, no control
 * character, nothing that could end the command line) and not starting with the marker.
 */
export function isSafeKey(key: string): boolean {
  const length = key.length;
  if (length === 0 || length > MAX_KEY_LENGTH || key.charCodeAt(0) === MARKER_CODE) return false;
  for (let i = 0; i < length; i++) {
    const code = key.charCodeAt(i);
    // 0x21..0x7e: printable ASCII without space; everything else (controls, DEL, non-ASCII) is out.
    if (code <= 0x20 || code >= 0x7f) return false;
  }
  return true;
}

/**
 * Prefix of the encoded form of a key with a lone surrogate. The marker twice: the base64url that
 * follows the marker of any other encoded key never contains the marker.
 */
const ILL_FORMED_PREFIX = ENCODED_KEY_MARKER + ENCODED_KEY_MARKER;

/**
 * The key sent to memcached for `key`: the key itself when safe, otherwise the marker plus the
 * SHA-256 of its UTF-8 bytes in base64url (44 characters). UTF-8 turns every lone surrogate into
 * U+FFFD, so a key that is not well-formed UTF-16 is hashed as its UTF-16 code units instead,
 * behind the marker twice. No encoded key contains whitespace or a control character, so
 * no key can inject a protocol command, and two different keys collide only if SHA-256 does.
 */
export function encodeKey(key: string): string {
  if (isSafeKey(key)) return key;
  if (isWellFormed(key)) return ENCODED_KEY_MARKER + hash('sha256', key, 'base64url');
  return ILL_FORMED_PREFIX + hash('sha256', Buffer.from(key, 'utf16le'), 'base64url');
}

/** `String#isWellFormed` (ES2024, in Node 20) while the project's TypeScript lib is ES2023. */
function isWellFormed(key: string): boolean {
  return (key as string & { isWellFormed(): boolean }).isWellFormed();
}
