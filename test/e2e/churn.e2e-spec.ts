import Keyv from 'keyv';
import { afterEach, describe, expect, it } from 'vitest';
import { FixedMembers, MemcachedStore } from 'nestjs-k8s';
import type { MemcachedStoreOptions } from 'nestjs-k8s';
import { memcachedAvailable, startMemcached, stopAllMemcached } from '../support/memcached.js';
import type { MemcachedProcess } from '../support/memcached.js';
import { quietLogger } from '../support/quiet-logger.js';
import { scaled } from '../support/timing.js';
import { sleep, waitFor } from '../support/wait-for.js';

// This file's loopback range: 127.0.76.x. The membership changes Kubernetes makes — readiness
// flaps, crashes, restarts, scale-up and down — through the public API, on real memcached.

const KEYS = Array.from({ length: 200 }, (_, i) => `key-${i}`);
const RETRY_TIMEOUT = scaled(500);

describe.runIf(memcachedAvailable())('members come and go', () => {
  const stores: MemcachedStore[] = [];

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.disconnect()));
    await stopAllMemcached();
  });

  async function start(count: number): Promise<MemcachedProcess[]> {
    return Promise.all(
      Array.from({ length: count }, (_, i) => startMemcached({ host: `127.0.76.${i + 1}` })),
    );
  }

  function open(
    members: MemcachedProcess[],
    options: Partial<MemcachedStoreOptions> = {},
  ): { source: FixedMembers; store: MemcachedStore; keyv: Keyv } {
    const source = new FixedMembers(members.map(({ host, port }) => ({ host, port })));
    const store = new MemcachedStore({
      source,
      retryTimeout: RETRY_TIMEOUT,
      failureLimit: 2,
      commandTimeout: scaled(1_000),
      logger: quietLogger,
      ...options,
    });
    stores.push(store);
    return { source, store, keyv: new Keyv({ store, namespace: 'churn' }) };
  }

  const asMembers = (members: MemcachedProcess[]) =>
    members.map(({ host, port }) => ({ host, port }));

  /** Every key's value now: the version it holds (`v<n>`), or undefined on a miss. */
  async function versions(keyv: Keyv): Promise<Array<string | undefined>> {
    return (await keyv.get<string>(KEYS)) as Array<string | undefined>;
  }

  async function writeAll(keyv: Keyv, version: string): Promise<void> {
    const stored = await keyv.setMany(KEYS.map((key) => ({ key, value: version })));
    expect(stored).toEqual(KEYS.map(() => true));
  }

  /** Fail traffic to `member` (killed) until the store ejects it. */
  async function ejected(store: MemcachedStore, keyv: Keyv, member: MemcachedProcess) {
    await waitFor(
      `${member.id} ejected`,
      async () => {
        await keyv.get(KEYS);
        return !store.stats().ring.includes(member.id);
      },
      scaled(5_000),
    );
  }

  it('readiness flaps of two healthy members: the ring is back at once each time, no write fails, every write is read back', async () => {
    const members = await start(2);
    const { source, store, keyv } = open(members);
    await writeAll(keyv, 'v0');
    let version = 0;
    for (let flap = 0; flap < 2; flap++) {
      for (const out of members) {
        source.set(asMembers(members.filter((m) => m !== out)));
        await writeAll(keyv, `v${++version}`);
        source.set(asMembers(members));
        // Both answer, both are listed: both serve, without waiting for anything.
        expect(store.stats().ring).toEqual(members.map((m) => m.id).sort());
        await writeAll(keyv, `v${++version}`);
      }
    }
    expect(await versions(keyv)).toEqual(KEYS.map(() => `v${version}`));
    expect(store.stats().members.every((m) => m.ejections === 0)).toBe(true);
  });

  it('readiness flaps without writes in between: every key still hits where it was (warm-up copies the rest)', async () => {
    const members = await start(2);
    const { source, store, keyv } = open(members, { warmupPeriod: 60_000 });
    await writeAll(keyv, 'v1');
    for (let flap = 0; flap < 2; flap++) {
      for (const out of members) {
        source.set(asMembers(members.filter((m) => m !== out)));
        // While one is out its keys are written to the other (what a pod does on a miss).
        const values = await versions(keyv);
        const missed = KEYS.filter((_, i) => values[i] === undefined);
        await keyv.setMany(missed.map((key) => ({ key, value: 'v1' })));
        source.set(asMembers(members));
        expect(store.stats().ring).toHaveLength(2);
      }
    }
    expect(await versions(keyv)).toEqual(KEYS.map(() => 'v1'));
  });

  it('a member crashes, comes back empty, takes its keys back and crashes again: 0 of 200 keys read stale', async () => {
    const members = await start(3);
    // A short warm-up, waited out below: during one, writes also delete a key's previous copy.
    const { store, keyv } = open(members, { warmupPeriod: 200 });
    const crashing = members[0];
    await writeAll(keyv, 'v1');
    crashing.kill('SIGKILL');
    await ejected(store, keyv, crashing);
    await writeAll(keyv, 'v2'); // its keys go to the neighbours
    await crashing.restart(); // empty
    await waitFor(
      'back on the ring',
      () => store.stats().ring.includes(crashing.id),
      scaled(5_000),
    );
    await sleep(300); // past the warm-up
    await writeAll(keyv, 'v3'); // its keys go back to it
    crashing.kill('SIGKILL');
    await ejected(store, keyv, crashing);
    const read = await versions(keyv);
    // Never v1 or v2: its keys are misses (their v3 died with it), every other key is v3.
    expect(read.filter((v) => v !== undefined && v !== 'v3')).toEqual([]);
    expect(read.filter((v) => v === 'v3').length).toBeGreaterThan(KEYS.length / 2);
    expect(read.filter((v) => v === undefined).length).toBeGreaterThan(0);
  });

  it('a member joins, its keys are rewritten after the warm-up, it leaves: 0 of 200 keys read stale', async () => {
    const members = await start(3);
    const [joining] = members.slice(2);
    const { source, keyv } = open(members.slice(0, 2), { warmupPeriod: 200 });
    await writeAll(keyv, 'v1');
    source.set(asMembers(members));
    await sleep(300); // past the warm-up
    await writeAll(keyv, 'v2');
    expect(Number((await joining.stats()).curr_items)).toBeGreaterThan(20);
    source.set(asMembers(members.slice(0, 2)));
    const read = await versions(keyv);
    expect(read.filter((v) => v === 'v1')).toEqual([]);
    expect(read.filter((v) => v === 'v2').length).toBeGreaterThan(KEYS.length / 2);
  });

  it('a member that stalled (kept its data) while keys were rewritten: back at once after its probe, its overwritten keys never read', async () => {
    const members = await start(2);
    const { store, keyv } = open(members);
    const stalling = members[0];
    await writeAll(keyv, 'v1');
    await stalling.freeze();
    await ejected(store, keyv, stalling);
    await writeAll(keyv, 'v2');
    const readmitted = new Promise<boolean>((resolve) =>
      store.once('readmit', (_: string, kept: boolean) => resolve(kept)),
    );
    stalling.thaw();
    expect(await readmitted).toBe(true); // it kept v1 of its keys
    expect(await versions(keyv)).not.toContain('v1');
  });
});
