import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { typeormLineNodeOptions } from './typeorm-line.js';

/** The repository root: where a user runs `npx nest start -- checkmigrations`. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** How a command ended, with everything it printed. */
export interface CommandResult {
  /** Exit code; null when killed by a signal (see `signal`). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  /** True when the time limit killed it. */
  timedOut: boolean;
}

export interface RunOptions {
  /** Added to the environment, e.g. `{ DATABASE_URL }`. */
  env?: Record<string, string>;
  /** Kill the process (SIGKILL) after this long. @default 30_000 */
  timeoutMs?: number;
  /**
   * Make the process print which TypeORM copies it loaded as it exits (a last stdout line, read
   * with `reportedTypeormCopies`). @default false
   */
  reportTypeorm?: boolean;
}

/** A started command: its process and how it ends. */
export interface RunningCommand {
  child: ChildProcess;
  result: Promise<CommandResult>;
  /** Resolves once stdout or stderr contains `text` (rejects when the process ends first). */
  waitForOutput(text: string): Promise<void>;
}

/** Start `node dist/sample/main.js <args>` as a user's image would. */
export function startSample(args: readonly string[], options: RunOptions = {}): RunningCommand {
  return start(process.execPath, ['dist/sample/main.js', ...args], options);
}

/** Run `node dist/sample/main.js <args>` to the end. */
export function runSample(
  args: readonly string[],
  options: RunOptions = {},
): Promise<CommandResult> {
  return startSample(args, options).result;
}

/**
 * Start an ES module given as source, run from the repository root (so it imports `typeorm`
 * and `./dist/lib/...` as an app would), with `args` after it. It calls the command entry with
 * options a test needs and the sample lacks (inline migrations, entities, several data sources).
 */
export function startScript(
  source: string,
  args: readonly string[],
  options: RunOptions = {},
): RunningCommand {
  return start(process.execPath, ['--input-type=module', '-e', source, ...args], options);
}

/** Run {@link startScript} to the end. */
export function runScript(
  source: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<CommandResult> {
  return startScript(source, args, options).result;
}

/**
 * The source of a script that runs `runK8sCommand` from the built library: `prelude` defines
 * things, `dataSources` is the expression its factory returns.
 */
export function commandScript({
  prelude = '',
  dataSources,
  connectTimeout,
}: {
  prelude?: string;
  dataSources: string;
  connectTimeout?: number;
}): string {
  return `
import { runK8sCommand } from './dist/lib/migrations/run-command.js';
import { EntitySchema } from 'typeorm';
${prelude}
await runK8sCommand({
  argv: process.argv.slice(1),
  ${connectTimeout === undefined ? '' : `connectTimeout: ${connectTimeout},`}
  dataSources: async () => (${dataSources}),
});
`;
}

/**
 * Run `npx nest start -- <args>` from `cwd` (the repository root, or a copy of it): slow, as
 * nest builds first.
 */
export function runNestStart(
  args: readonly string[],
  options: RunOptions & { cwd?: string } = {},
): Promise<CommandResult> {
  return start('npx', ['nest', 'start', '--', ...args], { timeoutMs: 120_000, ...options }).result;
}

function start(
  file: string,
  args: readonly string[],
  {
    env = {},
    timeoutMs = 30_000,
    cwd = ROOT,
    reportTypeorm = false,
  }: RunOptions & {
    cwd?: string;
  },
): RunningCommand {
  const started = Date.now();
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  // The sample must read only what the test gives it, and load the TypeORM line under test.
  delete childEnv.NODE_OPTIONS;
  const nodeOptions = typeormLineNodeOptions(reportTypeorm);
  if (nodeOptions) childEnv.NODE_OPTIONS = nodeOptions;
  const child = spawn(file, args, { cwd, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const watchers: { text: string; resolve: () => void }[] = [];
  const seen = (text: string): boolean => stdout.includes(text) || stderr.includes(text);
  const notify = (): void => {
    for (const watcher of watchers.filter((w) => seen(w.text))) {
      watchers.splice(watchers.indexOf(watcher), 1);
      watcher.resolve();
    }
  };
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    notify();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    notify();
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const result = new Promise<CommandResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, durationMs: Date.now() - started, timedOut });
    });
  });
  const waitForOutput = (text: string): Promise<void> =>
    seen(text)
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          watchers.push({ text, resolve });
          void result.then(() =>
            reject(new Error(`exited before printing "${text}":\n${stdout}${stderr}`)),
          );
        });
  return { child, result, waitForOutput };
}

/** Lines of `text`, without empty ones. */
export function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '');
}

/** Whether output holds a JavaScript stack frame. */
export function hasStackTrace(text: string): boolean {
  return /^\s+at .+/m.test(text);
}
