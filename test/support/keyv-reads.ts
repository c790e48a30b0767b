import type Keyv from 'keyv';

/**
 * Reads `keys`, half one by one and half in multi-gets (200 at a time); for each, whether it hit
 * its right value, `value of <key>` (what the tests that use this write).
 */
export async function readAll(keyv: Keyv, keys: readonly string[]): Promise<boolean[]> {
  const half = Math.floor(keys.length / 2);
  const single = await Promise.all(keys.slice(0, half).map((key) => keyv.get(key)));
  const multi: unknown[] = [];
  for (let i = half; i < keys.length; i += 200) {
    multi.push(...(await keyv.getMany(keys.slice(i, Math.min(i + 200, keys.length)))));
  }
  return [...single, ...multi].map((value, i) => value === `value of ${keys[i]}`);
}
