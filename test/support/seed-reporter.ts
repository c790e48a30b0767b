import type { Reporter, Vitest } from 'vitest/node';

/**
 * Prints the shuffle seed again at the end of a shuffled run (vitest prints it only in its
 * opening banner, hundreds of lines up), with the flags that replay the same order.
 */
export default class SeedReporter implements Reporter {
  private vitest: Vitest | undefined;

  onInit(vitest: Vitest): void {
    this.vitest = vitest;
  }

  onTestRunEnd(): void {
    const sequence = this.vitest?.config.sequence;
    if (!sequence?.shuffle) return;
    this.vitest?.logger.log(
      `Shuffled with seed ${sequence.seed}: replay this order with ` +
        `--sequence.shuffle --sequence.seed=${sequence.seed}`,
    );
  }
}
