import { Logger } from '@nestjs/common';
import Keyv from 'keyv';

const logger = new Logger('K8sCache');

/**
 * The Keyv of each tier when `cache.nonBlocking` is on. cache-manager then starts each tier's
 * write and resolves without awaiting it, so a write that rejects (a value Keyv cannot serialize,
 * such as a BigInt) would be an unhandled rejection, which ends a Node process. Here such a write
 * is logged and resolves `false`: the value is not cached, the app keeps running.
 */
export class SettledWritesKeyv extends Keyv {
  override async set<Value>(key: string, value: Value, ttl?: number): Promise<boolean> {
    try {
      return await super.set(key, value, ttl);
    } catch (error) {
      logger.warn(
        `set("${key}"): not cached: ${error instanceof Error ? error.message : String(error)}`,
      );
      return false;
    }
  }
}
