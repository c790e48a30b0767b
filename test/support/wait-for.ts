import { scaled } from './timing.js';

/**
 * Polls `check` every 25 ms until it returns true; throws naming `what` once `ms` (scaled by
 * `NESTJS_K8S_TEST_TIME_SCALE`) have passed. Bounded in time, for conditions that become true in
 * the background.
 */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms: number,
): Promise<void> {
  await waitForValue(what, check, Boolean, ms);
}

/**
 * Polls `probe` every 25 ms until `done` accepts what it returned, and returns that; throws naming
 * `what` and the last value once `ms` (scaled) have passed.
 */
export async function waitForValue<T>(
  what: string,
  probe: () => T | Promise<T>,
  done: (value: T) => boolean,
  ms: number,
): Promise<T> {
  const limit = scaled(ms);
  const deadline = Date.now() + limit;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() >= deadline) {
      throw new Error(
        `timed out after ${limit} ms waiting for ${what} (last: ${JSON.stringify(value)})`,
      );
    }
    await sleep(25);
  }
}

/** A plain delay: for pacing load or letting time pass, never as a wait for a condition. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves once `Date.now()` has passed `time` (a sleep that ends at a known instant). */
export async function sleepUntil(time: number): Promise<void> {
  while (Date.now() <= time) await sleep(Math.max(1, time - Date.now() + 1));
}
