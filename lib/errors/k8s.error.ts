/** Base class of every error this library throws, so callers can tell ours apart. */
export class K8sError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Options given to `K8sModule` (or a store, or a command) that cannot work; fix them and restart. */
export class K8sOptionsError extends K8sError {}
