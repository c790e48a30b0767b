import { constants as osConstants } from 'node:os';

/** What {@link untilAborted} resolves to once the signal aborted. */
export const ABORTED = Symbol('aborted');

/** `work`, or {@link ABORTED} as soon as `signal` aborts (the work is left to finish alone). */
export async function untilAborted<T>(
  work: Promise<T>,
  signal: AbortSignal | undefined,
): Promise<T | typeof ABORTED> {
  if (!signal) return work;
  const stop = stopWhen(0, signal);
  try {
    return await Promise.race([work, stop.reached.then((): typeof ABORTED => ABORTED)]);
  } finally {
    stop.dispose();
  }
}

/** Resolves to `timeout` after `ms` (0 = never) or to `signal` when aborted. */
export function stopWhen(
  ms: number,
  signal: AbortSignal | undefined,
): { reached: Promise<'timeout' | 'signal'>; dispose(): void } {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const reached = new Promise<'timeout' | 'signal'>((resolve) => {
    if (ms > 0) timer = setTimeout(() => resolve('timeout'), ms);
    onAbort = () => resolve('signal');
    if (signal?.aborted) resolve('signal');
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  return {
    reached,
    dispose: () => {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    },
  };
}

/** 128 + the number of the signal named by `signal`'s abort reason (1 when unknown). */
export function signalExitCode(signal: AbortSignal | undefined): number {
  const name = String(signal?.reason ?? 'signal');
  const number = (osConstants.signals as Record<string, number | undefined>)[name];
  return number ? 128 + number : 1;
}
