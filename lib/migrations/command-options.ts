import type { DataSource, DataSourceOptions } from 'typeorm';
import type { CommandTracer } from './command-tracer.js';

/** A data source as the app configures it: an (uninitialized) `DataSource` or its options. */
export type K8sDataSourceInput = DataSource | DataSourceOptions;

/** Options of `runK8sCommand` and `executeK8sCommand`. */
export interface K8sCommandOptions {
  /**
   * The data sources to check and migrate, from the same place the app takes them (like the
   * TypeORM CLI's exported `DataSource`). Called only when a command runs. Only their options
   * are used: each command builds, connects and destroys its own `DataSource`.
   */
  dataSources: () =>
    | K8sDataSourceInput
    | readonly K8sDataSourceInput[]
    | Promise<K8sDataSourceInput | readonly K8sDataSourceInput[]>;
  /** The command line; its first word names the command. @default process.argv.slice(2) */
  argv?: readonly string[];
  /**
   * Time limit of one attempt in ms: connecting and reading the migrations of a data source (a
   * database that accepts connections but never answers is reported as such, and waiting goes
   * on). Also the driver's connect timeout for data sources whose options set none. @default 5000
   */
  connectTimeout?: number;
  /**
   * Sees each `checkmigrations` attempt and each data source `migrate` works on (e.g. to record
   * tracing spans).
   * @default OpenTelemetry spans when `@opentelemetry/api` is installed, else no tracing
   */
  tracer?: CommandTracer;
}

/** Where a command writes its lines. */
export interface K8sCommandIo {
  out(line: string): void;
  err(line: string): void;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/** The process's standard output and error, one line per call. */
export const stdio: K8sCommandIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};
