import { describe, expect, it } from 'vitest';
import { MigrationUsageError } from '../errors/migration.errors.js';
import {
  DEFAULT_INTERVAL_SECONDS,
  DEFAULT_TIMEOUT_SECONDS,
  MAX_SECONDS,
  commandOf,
  misplacedCommand,
  parseCommandArgs,
} from './command-args.js';

describe('parseCommandArgs', () => {
  it('reads checkmigrations options in both spellings, with documented defaults', () => {
    expect(parseCommandArgs(['checkmigrations'])).toEqual({
      command: 'checkmigrations',
      help: false,
      wait: false,
      timeout: DEFAULT_TIMEOUT_SECONDS,
      interval: DEFAULT_INTERVAL_SECONDS,
    });
    expect(
      parseCommandArgs(['checkmigrations', '--wait', '--timeout', '0', '--interval=0.5']),
    ).toMatchObject({
      wait: true,
      timeout: 0,
      interval: 0.5,
    });
    expect(parseCommandArgs(['migrate', '--timeout=12'])).toEqual({
      command: 'migrate',
      help: false,
      timeout: 12,
    });
  });

  it.each([
    [['checkmigrations', '--wiat']],
    [['checkmigrations', 'extra']],
    [['checkmigrations', '--timeout']],
    [['checkmigrations', '--timeout', '-1']],
    [['checkmigrations', '--timeout', 'soon']],
    [['checkmigrations', '--interval', '0']],
    [['checkmigrations', '--wait=yes']],
    [['migrate', '--wait']],
    // Node's timers overflow above 2^31-1 ms and would fire at once.
    [['checkmigrations', '--timeout', '2147484']],
    [['checkmigrations', '--interval', '3000000']],
    [['migrate', '--timeout=1e9']],
    // Repeated options: which one wins would be a guess.
    [['checkmigrations', '--wait', '--wait']],
    [['checkmigrations', '--timeout', '1', '--timeout=2']],
    [['migrate', '--help', '--help']],
    // Number() would take these: only plain decimals are seconds.
    [['checkmigrations', '--timeout', '0x10']],
    [['checkmigrations', '--timeout', '1e1']],
    [['checkmigrations', '--timeout', ' 5']],
    [['checkmigrations', '--interval=.5']],
    [['migrate', '--timeout', '5 ']],
  ])('rejects %j with one line that holds the synopsis', (argv) => {
    expect(() => parseCommandArgs(argv)).toThrow(MigrationUsageError);
    expect(() => parseCommandArgs(argv)).toThrow(
      /^(checkmigrations|migrate): [^\n]+ Usage: \1 \[[^\n]+; see "\1 --help"\.$/,
    );
  });

  it('accepts plain decimals, and skips a leading --', () => {
    expect(
      parseCommandArgs(['--', 'checkmigrations', '--timeout', '07', '--interval', '0.25']),
    ).toMatchObject({ command: 'checkmigrations', timeout: 7, interval: 0.25 });
  });

  it('accepts the largest timer-safe number of seconds', () => {
    expect(
      parseCommandArgs([
        'checkmigrations',
        '--timeout',
        String(MAX_SECONDS),
        '--interval',
        '2147483',
      ]),
    ).toMatchObject({ timeout: MAX_SECONDS, interval: MAX_SECONDS });
  });

  it('recognises a command only as the first argument, after an optional --', () => {
    expect(commandOf(['migrate'])).toBe('migrate');
    expect(commandOf(['--', 'checkmigrations', '--wait'])).toBe('checkmigrations');
    expect(commandOf(['--port', 'migrate'])).toBeUndefined();
    expect(commandOf([])).toBeUndefined();
  });

  it.each([
    [['--wait', 'checkmigrations'], 'checkmigrations'],
    [['--port', 'migrate'], 'migrate'],
    [['CheckMigrations'], 'checkmigrations'],
    [['--', '--', 'checkmigrations'], 'checkmigrations'],
    [['--wait'], 'checkmigrations'],
    [['--interval=5'], 'checkmigrations'],
    [['serve', 'MIGRATE'], 'migrate'],
  ])('calls %j a misplaced command (a usage error, not an app start)', (argv, command) => {
    const line = misplacedCommand(argv);
    expect(line).toMatch(new RegExp(`^${command}: the command must be the first argument`));
    expect(line).not.toContain('\n');
  });

  it.each([
    [[]],
    [['--port', '3000']],
    [['serve']],
    [['checkmigrations', '--wait']],
    [['--', 'migrate']],
  ])('leaves %j alone', (argv) => {
    expect(misplacedCommand(argv)).toBeUndefined();
  });
});
