/**
 * `work`, or `late()` when it has not settled within `ms`. The work is not cancelled: it is left
 * to finish alone (a rejection after the deadline is ignored, never reported as unhandled), so
 * `late` must describe a result the caller can act on meanwhile. The timer is cleared as soon as
 * `work` settles; it is not unref'd, so a command awaiting its cleanup cannot end early with an
 * empty event loop.
 */
export function withDeadline<T, F>(work: Promise<T>, ms: number, late: () => F): Promise<T | F> {
  return new Promise<T | F>((resolve, reject) => {
    const timer = setTimeout(() => resolve(late()), Math.max(0, ms));
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
