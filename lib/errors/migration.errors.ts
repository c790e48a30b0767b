import { K8sError, K8sOptionsError } from './k8s.error.js';

/** A command line that `checkmigrations` or `migrate` cannot run; the message carries the usage. */
export class MigrationUsageError extends K8sOptionsError {}

/** `migrate` waited `--timeout` seconds for the lock another `migrate` still holds. */
export class MigrationLockTimeoutError extends K8sError {}

/** `migrate` has no lock for this database type, so it refuses to run rather than risk a race. */
export class MigrationLockUnsupportedError extends K8sOptionsError {}
