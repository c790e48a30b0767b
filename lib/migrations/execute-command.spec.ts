import { describe, expect, it } from 'vitest';
import { executeK8sCommand } from './execute-command.js';

describe('executeK8sCommand (in process)', () => {
  const capture = (): {
    out: string[];
    err: string[];
    io: { out(l: string): void; err(l: string): void };
  } => {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, io: { out: (l) => out.push(l), err: (l) => err.push(l) } };
  };

  it('refuses an empty list of data sources with exit 2', async () => {
    const { err, io } = capture();
    expect(await executeK8sCommand(['checkmigrations'], { dataSources: () => [] }, { io })).toBe(2);
    expect(err).toEqual(['checkmigrations: configuration error: no data source is configured']);
  });

  it('migrate on a port that refuses is exit 1 with one line', async () => {
    const { err, io } = capture();
    const code = await executeK8sCommand(
      ['migrate'],
      {
        dataSources: () =>
          ({
            type: 'postgres',
            host: '127.0.0.1',
            port: 1,
            migrations: ['x.js'],
          }) as never,
      },
      { io },
    );
    expect(code).toBe(1);
    expect(err[0]).toMatch(/^Cannot migrate: database unreachable: postgres 127\.0\.0\.1:1\//);
  });

  it('reports an abort while the factory runs as 128 + the signal number', async () => {
    const { err, io } = capture();
    const controller = new AbortController();
    const code = executeK8sCommand(
      ['checkmigrations'],
      { dataSources: () => new Promise(() => undefined) },
      { io, signal: controller.signal },
    );
    controller.abort('SIGINT');
    expect(await code).toBe(130);
    expect(err).toEqual(['Interrupted by SIGINT while reading the data source options']);
  });
});
