/**
 * `work`, or `late()` when it takes longer than `ms`. The work is not cancelled: it is left to
 * finish alone, so `late` must describe a result the caller can act on meanwhile.
 */
export async function withDeadline<T>(work: Promise<T>, ms: number, late: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<T>((resolve) => {
        timer = setTimeout(() => resolve(late()), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
