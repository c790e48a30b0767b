/** Consecutive lookups answering the same single address before the warning. */
export const SINGLE_ADDRESS_LOOKUPS = 3;

/** Options of `SingleAddressWatch`. */
export interface SingleAddressWatchOptions {
  /**
   * The lookups must span at least this many ms (one refresh interval): a headless Service
   * whose other pods are just starting answers one address for a moment, a ClusterIP always.
   */
  readonly minSpanMs: number;
  /** Environment to read `KUBERNETES_SERVICE_HOST` from (set in every pod). @default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

interface Streak {
  address: string;
  count: number;
  since: number;
}

/**
 * Notices a Kubernetes Service name that keeps resolving to exactly one address: most likely a
 * ClusterIP Service, whose one virtual IP kube-proxy spreads over the pods, so the pool sees one
 * "member", does not shard and misses copies on delete. Rule: the same single address in
 * `SINGLE_ADDRESS_LOOKUPS` consecutive successful lookups spanning at least `minSpanMs`; any
 * other answer starts the count again. Warns once per name.
 */
export class SingleAddressWatch {
  private readonly streaks = new Map<string, Streak>();
  private readonly warned = new Set<string>();
  private readonly inKubernetes: boolean;

  constructor(private readonly options: SingleAddressWatchOptions) {
    this.inKubernetes = Boolean((options.env ?? process.env).KUBERNETES_SERVICE_HOST);
  }

  /**
   * One successful lookup of `name` (an A/AAAA name, not SRV) answered `addresses` at `now`.
   * Returns the warning to log, once, when the rule is met.
   */
  observe(name: string, addresses: readonly string[], now: number): string | undefined {
    if (this.warned.has(name) || !this.looksLikeService(name)) return undefined;
    if (addresses.length !== 1) {
      this.streaks.delete(name);
      return undefined;
    }
    const [address] = addresses;
    let streak = this.streaks.get(name);
    if (streak?.address !== address) {
      streak = { address, count: 0, since: now };
      this.streaks.set(name, streak);
    }
    streak.count++;
    if (streak.count < SINGLE_ADDRESS_LOOKUPS || now - streak.since < this.options.minSpanMs) {
      return undefined;
    }
    this.warned.add(name);
    this.streaks.delete(name);
    return (
      `Cache host "${name}" has resolved to one address (${address}) in ${streak.count} lookups ` +
      `in a row: it is most likely a ClusterIP Service, so every memcached pod hides behind one ` +
      `virtual IP and keys are neither sharded nor deleted everywhere. Point cache.host at a ` +
      `headless Service (clusterIP: None) that selects the memcached pods; with the Bitnami ` +
      `chart: --set architecture=high-availability --set service.clusterIP=None (and ` +
      `replicaCount). Ignore this if you run a single memcached pod.`
    );
  }

  /** `*.svc` / `*.svc.<zone>` names, and short names (`svc`, `svc.ns`) inside a pod. */
  private looksLikeService(name: string): boolean {
    const labels = name.replace(/\.$/, '').split('.');
    if (labels.slice(1).includes('svc')) return true;
    return this.inKubernetes && labels.length <= 2;
  }
}
