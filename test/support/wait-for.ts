/**
 * Polls `check` every 25 ms until it returns true; throws naming `what` once `ms` have passed.
 * Bounded in time, for conditions that become true in the background.
 */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms: number,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** Resolves once `Date.now()` has passed `time` (a sleep that ends at a known instant). */
export async function sleepUntil(time: number): Promise<void> {
  while (Date.now() <= time) {
    await new Promise((resolve) => setTimeout(resolve, Math.max(1, time - Date.now() + 1)));
  }
}
