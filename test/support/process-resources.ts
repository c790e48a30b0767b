import { readdirSync, readlinkSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// What a process holds, for the leak checks of long and faulty runs.

/** Sockets this process holds open (libuv handles and c-ares' own sockets alike). */
export function openSockets(): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
    } catch {
      return false; // closed between the listing and the look
    }
  }).length;
}

/** `process.getActiveResourcesInfo()` as counts per type. */
export function activeResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo())
    counts.set(type, (counts.get(type) ?? 0) + 1);
  return counts;
}

/** Types whose count grew from `before` to `after`, as `type +n`. */
export function growth(before: Map<string, number>, after: Map<string, number>): string[] {
  return [...after]
    .filter(([type, n]) => n > (before.get(type) ?? 0))
    .map(([type, n]) => `${type} +${n - (before.get(type) ?? 0)}`);
}

/** The heap in use after a full garbage collection, in bytes. */
export function heapAfterGc(): number {
  setFlagsFromString('--expose_gc');
  (runInNewContext('gc') as () => void)();
  return process.memoryUsage().heapUsed;
}
