import { commandOf, misplacedCommand } from './command-args.js';
import { stdio } from './command-options.js';
import type { K8sCommandOptions } from './command-options.js';
import { executeK8sCommand } from './execute-command.js';
import { maskCredentials } from './mask-credentials.js';
import { errorLine } from './migration-check.js';

/**
 * Call first in `main.ts`. When the first argument (after an optional `--`) is
 * `checkmigrations` or `migrate`, run that command and exit the process with its code, before
 * any Nest module is booted (so no HTTP server, cache pool or @nestjs/typeorm connection
 * retries); otherwise return at once. A command line that names a command elsewhere, in
 * another case, or has `--wait`/`--interval` without one, exits 2 with a usage line instead
 * of starting the app.
 *
 * ```ts
 * await runK8sCommand({ dataSources: () => dataSourceOptions() });
 * const app = await NestFactory.create(AppModule);
 * ```
 */
export async function runK8sCommand(options: K8sCommandOptions): Promise<void> {
  const argv = options.argv ?? process.argv.slice(2);
  if (!commandOf(argv)) {
    const misplaced = misplacedCommand(argv);
    if (!misplaced) return;
    stdio.err(misplaced);
    process.exit(2);
  }
  // Node prints some warnings (pg's TLS "SECURITY WARNING") over many lines: one line each.
  process.removeAllListeners('warning');
  process.on('warning', (warning) =>
    stdio.err(`Warning: ${maskCredentials(errorLine(warning), [])}`),
  );
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => controller.abort(signal);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  let code: number;
  try {
    code = await executeK8sCommand(argv, options, { signal: controller.signal });
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
  // The one place allowed to exit: a command's meaning is its exit code, and in-flight driver
  // sockets (an attempt cut short by a timeout or a signal) must not keep the process alive.
  process.exit(code);
}
