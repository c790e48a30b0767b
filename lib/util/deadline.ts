/**
 * `promise`, or `fallback` when it has not settled within `ms` (then or later, its own outcome is
 * ignored; a rejection after the deadline is not reported as unhandled). The timer never keeps the
 * process alive and is cleared as soon as `promise` settles.
 */
export function withDeadline<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  return new Promise<T | F>((resolve, reject) => {
    const timer = setTimeout(() => resolve(fallback), Math.max(0, ms));
    timer.unref();
    promise.then(
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
