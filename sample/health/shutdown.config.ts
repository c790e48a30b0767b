/** How the sample shuts down on SIGTERM, from the environment. */
export interface ShutdownConfig {
  /**
   * Time between SIGTERM and closing the server, in ms: readiness answers 503 meanwhile while
   * traffic is still served, until Kubernetes has taken the pod out of its Service endpoints.
   * `SHUTDOWN_DELAY_MS`. @default 5000 in a pod (KUBERNETES_SERVICE_HOST set), else 0
   */
  delayMs: number;
  /**
   * Time in-flight requests get to finish once the server stopped accepting, in ms; then their
   * connections are cut so the pool and the database close before the kubelet's SIGKILL.
   * `SHUTDOWN_DRAIN_TIMEOUT_MS`. @default 20000 (with the delay, inside the default 30 s
   * terminationGracePeriodSeconds)
   */
  drainTimeoutMs: number;
}

/** The shutdown timings from `SHUTDOWN_DELAY_MS` and `SHUTDOWN_DRAIN_TIMEOUT_MS`; invalid values throw. */
export function shutdownConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ShutdownConfig {
  return {
    delayMs: ms(env, 'SHUTDOWN_DELAY_MS', env.KUBERNETES_SERVICE_HOST ? 5000 : 0),
    drainTimeoutMs: ms(env, 'SHUTDOWN_DRAIN_TIMEOUT_MS', 20_000),
  };
}

function ms(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`${name} must be a whole number of milliseconds, not "${text}"`);
  }
  return value;
}
