/**
 * One factor for every timing constant that decides a test (polling deadlines, the command and
 * retry timeouts behind "zero errors" assertions, vitest's test and hook timeouts): a slow or
 * loaded machine sets `NESTJS_K8S_TEST_TIME_SCALE=3` instead of each test growing its own margin.
 */
export function timeScale(): number {
  const raw = process.env.NESTJS_K8S_TEST_TIME_SCALE;
  if (raw === undefined || raw.trim() === '') return 1;
  const scale = Number(raw);
  if (!Number.isFinite(scale) || scale <= 0) {
    throw new Error(
      `NESTJS_K8S_TEST_TIME_SCALE must be a positive number (e.g. 2 or 1.5), got ${JSON.stringify(raw)}`,
    );
  }
  return scale;
}

/** `ms` times `NESTJS_K8S_TEST_TIME_SCALE` (default 1), rounded to whole milliseconds. */
export function scaled(ms: number): number {
  return Math.round(ms * timeScale());
}
