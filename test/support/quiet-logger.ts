import type { LoggerService } from '@nestjs/common';

const nothing = (): void => undefined;

/**
 * A logger that prints nothing, for stores, discovery and Nest apps whose log lines a test does
 * not read (spread it and override the level a test counts or records).
 */
export const quietLogger: LoggerService = {
  log: nothing,
  error: nothing,
  warn: nothing,
  debug: nothing,
  verbose: nothing,
  fatal: nothing,
};
