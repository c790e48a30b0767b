import { MemcachedValueTooLargeError } from '../../errors/memcached.errors.js';

/**
 * The error to report when `value` is larger than `max` bytes (memcached would refuse it), else
 * undefined. Only strings and Buffers are measured: that is what Keyv hands a store.
 */
export function valueTooLarge(
  key: string,
  value: unknown,
  max: number,
): MemcachedValueTooLargeError | undefined {
  let size = 0;
  // A string of n UTF-16 units takes at most 3n bytes: only long ones need measuring.
  if (typeof value === 'string') size = value.length * 3 > max ? Buffer.byteLength(value) : 0;
  else if (Buffer.isBuffer(value)) size = value.length;
  return size > max ? new MemcachedValueTooLargeError(key, size, max) : undefined;
}
