import { randomBytes } from 'node:crypto';
import type { LoggerService } from '@nestjs/common';
import { encodeKey } from '../protocol/key-encoding.js';
import type { MemcachedPool } from '../pool/memcached-pool.js';

/** What the generation protocol needs from its store. */
export interface GenerationContext {
  readonly pool: Pick<MemcachedPool, 'getOnEach' | 'setOnEach'>;
  readonly logger: LoggerService;
  readonly logContext: string;
  /** Resolves once the first member list is applied. */
  ready(): Promise<void>;
  /** The store was disconnected: loads end with "unknown". */
  closed(): boolean;
  /** How long a loaded generation is used before it is reloaded, in ms. */
  cacheTime(): number;
  /** The generation in use changed (another process's `clear()`, or this one's). */
  changed?(): void;
}

/**
 * The namespace generation protocol. Every key lives under `<namespace>:<generation>:`. The
 * generation is a token (creation time plus random bits) kept under `<namespace>:~gen` on every
 * member, not on one: a member that joins, restarts or is evicted empty gets the newest token
 * copied to it, so a change of members never empties the namespace by accident. `clear()` writes a
 * newer token to every member: from then on this process reads and writes under it at once, and
 * other processes switch within `cacheTime` ms plus one round trip, when their cached token
 * expires. Old entries are never read again and age out through memcached's LRU or their TTL.
 * Tokens are random rather than a counter so that losing every copy of the generation key can
 * never bring back an older generation: a fresh token is made instead.
 */
export class NamespaceGeneration {
  private namespaceValue: string | undefined;
  /** `<namespace>:<generation>:`, or '' until the generation is known. */
  private keyPrefix = '';
  /**
   * Until when `keyPrefix` may be used without asking the members: `cacheTime` after the members
   * were asked (not after they answered), so no read uses a generation that a `clear()` resolved
   * more than `cacheTime` ago replaced. Past it, reads wait for a reload.
   */
  private expires = 0;
  /** From when traffic reloads the generation in the background: half way to `expires`. */
  private refreshFrom = 0;
  private loading: Promise<string | undefined> | undefined;
  /** Bumped by `clear()` and namespace changes: a lookup started before must not win. */
  private epoch = 0;
  /** The token behind `keyPrefix` ('' before the first load). */
  private token = '';

  constructor(private readonly context: GenerationContext) {}

  get namespace(): string | undefined {
    return this.namespaceValue;
  }

  /** Use `namespace` from now on; true when the previous one was in use already. */
  setNamespace(namespace: string | undefined): boolean {
    const inUse = this.keyPrefix !== '';
    this.namespaceValue = namespace;
    this.keyPrefix = '';
    this.token = '';
    this.epoch++;
    return inUse;
  }

  /** The key every member holds the token under (the pool's restart marker too). */
  key(): string {
    return encodeKey(`${this.namespaceValue ?? ''}:~gen`);
  }

  /**
   * The prefix of the current generation, or '' when it must be loaded first (never loaded, or
   * last confirmed by the members `cacheTime` ago or more: an idle process). Half way there,
   * traffic reloads it in the background, so a busy process never waits for the reload, which
   * asks every member.
   */
  current(): string {
    const now = Date.now();
    if (now < this.refreshFrom) return this.keyPrefix;
    if (now >= this.expires) return '';
    void this.load();
    return this.keyPrefix;
  }

  /** Load the generation (single-flight); resolves to the key prefix, undefined when unknown. */
  load(): Promise<string | undefined> {
    this.loading ??= this.fetch().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  /** A new token, newer than every one a member holds, on every member. */
  async clear(): Promise<void> {
    await this.context.ready();
    // Newer than every token a member holds, whatever this pod's clock says: otherwise other
    // processes' "newest wins" would bring the old generation back.
    let newest = this.token;
    for (const { value } of await this.context.pool.getOnEach(this.key())) {
      if (typeof value === 'string' && isToken(value) && value > newest) newest = value;
    }
    await this.switchTo(newToken(newest));
  }

  /**
   * The pool can no longer tell which keys may have an older copy on the members it now routes to
   * (see `PoolPolicy.untracked`): a new generation, switched to here synchronously, hides them all.
   */
  untracked(reason: string): void {
    this.context.logger.warn(
      `memcached members changed and ${reason}: starting a new namespace generation so that ` +
        'no overwritten entry is read (raise cache.trackedKeys to keep the cache instead)',
      this.context.logContext,
    );
    void this.switchTo(newToken(this.token));
  }

  /** Forget the prefix (the store was disconnected). */
  reset(): void {
    this.keyPrefix = '';
    this.expires = this.refreshFrom = 0;
  }

  /** Use `token` in this process from now on (synchronously), then give it to every member. */
  private async switchTo(token: string): Promise<void> {
    this.epoch++;
    this.use(token, Date.now());
    const stored = await this.context.pool.setOnEach(this.key(), token, 0);
    const missed = stored.filter((ok) => !ok).length;
    if (missed > 0) {
      this.context.logger.warn(
        `a new generation reached ${stored.length - missed} of ${stored.length} memcached ` +
          'members; the others get it from this process when they answer again',
        this.context.logContext,
      );
    }
  }

  /** Use `token`, known to be the newest at `askedAt`, until `cacheTime` after that. */
  private use(token: string, askedAt: number): void {
    const previous = this.token;
    this.token = token;
    this.keyPrefix = `${this.namespaceValue ?? ''}:${token}:`;
    this.trustUntil(askedAt);
    if (previous !== '' && previous !== token) this.context.changed?.();
  }

  private trustUntil(askedAt: number): void {
    const cacheTime = this.context.cacheTime();
    this.expires = askedAt + cacheTime;
    this.refreshFrom = askedAt + cacheTime / 2;
  }

  private async fetch(): Promise<string | undefined> {
    await this.context.ready();
    for (;;) {
      if (this.context.closed()) return undefined;
      const epoch = this.epoch;
      const key = this.key();
      const askedAt = Date.now();
      const answers = await this.context.pool.getOnEach(key);
      if (this.context.closed()) return undefined;
      // A clear() or a namespace change while we asked: ask again for the new state.
      if (epoch !== this.epoch) continue;
      // Newest wins, this process's own token included: a clear() that some members missed is
      // pushed to them rather than undone by their older token.
      let newest = isToken(this.token) ? this.token : undefined;
      let reached = 0;
      for (const { value, failed } of answers) {
        if (failed) continue;
        reached++;
        if (
          typeof value === 'string' &&
          isToken(value) &&
          (newest === undefined || value > newest)
        ) {
          newest = value;
        }
      }
      if (reached === 0) {
        // Nothing confirmed: the generation in use stays until it expires, and after that the
        // call is a miss (or a failed write) rather than a read of what may be an old generation.
        return Date.now() < this.expires ? this.keyPrefix : undefined;
      }
      // Nobody has one (first use, or every copy lost): start a new generation.
      const token = newest ?? newToken('');
      const stale = answers.filter((a) => !a.failed && a.value !== token).map((a) => a.member);
      if (stale.length > 0) await this.context.pool.setOnEach(key, token, 0, stale);
      if (this.context.closed()) return undefined;
      if (epoch !== this.epoch) continue;
      this.use(token, askedAt);
      return this.keyPrefix;
    }
  }
}

/**
 * A generation token: creation time (fixed-width base 36, so newer tokens sort higher) and random
 * bits. Never older than `after`, so a clear by a process with a slow clock still wins.
 */
function newToken(after: string): string {
  const afterTime = isToken(after) ? parseInt(after.slice(0, TOKEN_TIME_WIDTH), 36) + 1 : 0;
  const time = Math.max(Date.now(), afterTime).toString(36).padStart(TOKEN_TIME_WIDTH, '0');
  return `${time}.${randomBytes(6).toString('base64url')}`;
}

const TOKEN_TIME_WIDTH = 9;
const TOKEN_PATTERN = /^[0-9a-z]{9}\.[A-Za-z0-9_-]{8}$/;

function isToken(value: string): boolean {
  return TOKEN_PATTERN.test(value);
}
