import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseHostSpec } from '../../lib/discovery/host-spec.js';
import {
  commandOf,
  K8S_COMMANDS,
  misplacedCommand,
  parseCommandArgs,
} from '../../lib/migrations/command-args.js';
import type { CheckMigrationsArgs, MigrateArgs } from '../../lib/migrations/command-args.js';
import { databaseOptions } from '../../sample/database/database.options.js';
import { shutdownConfigFromEnv } from '../../sample/health/shutdown.config.js';
import { MEMCACHED_HEALTH_TIMEOUT_MS } from '../../lib/health/memcached.health.js';
import { MIGRATIONS_HEALTH_TIMEOUT_MS } from '../../lib/health/migrations.health.js';
import {
  K8S_DIR,
  dockerfile,
  loadManifests,
  podSpecOf as podSpec,
} from '../support/k8s-manifests.js';
import type { Container, K8sObject } from '../support/k8s-manifests.js';
import { ROOT } from '../support/run-command.js';
import { envNamesRead, getRoutes } from '../support/sample-sources.js';

// sample/k8s/ checked against what the sample really reads, accepts and serves: every fact is
// taken from the sources (env var names, command words and options, controller paths, shutdown
// timing, the database URL parser, the host-spec parser), so a rename on either side fails here.
// No services needed. `dist/` is built by the global setup.

const objects = loadManifests();
const find = (kind: string, name: string): K8sObject => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} "${name}" in sample/k8s`);
  return found;
};
const deployment = objects.find((o) => o.kind === 'Deployment') as K8sObject;
const job = objects.find((o) => o.kind === 'Job') as K8sObject;
const appContainer = (): Container => podSpec(deployment).containers[0];
const initContainer = (): Container => podSpec(deployment).initContainers![0];
const jobContainer = (): Container => podSpec(job).containers[0];
const configMap = (): K8sObject => find('ConfigMap', appContainer().envFrom![0].configMapRef!.name);

/** The value of every variable a container gets, resolved through its ConfigMaps and Secrets. */
function environment(container: Container): Map<string, string> {
  const env = new Map<string, string>();
  for (const from of container.envFrom ?? []) {
    const source = from.configMapRef
      ? find('ConfigMap', from.configMapRef.name).data
      : find('Secret', from.secretRef!.name).stringData;
    for (const [name, value] of Object.entries(source ?? {})) env.set(name, value);
  }
  for (const variable of container.env ?? []) {
    const ref = variable.valueFrom?.secretKeyRef;
    const value = ref ? find('Secret', ref.name).stringData?.[ref.key] : variable.value;
    if (value === undefined) throw new Error(`${container.name}: ${variable.name} has no value`);
    env.set(variable.name, value);
  }
  return env;
}

/** The argv a container runs: its command and args, or the image's CMD. */
function argvOf(container: Container): string[] {
  if (container.command) return [...container.command, ...(container.args ?? [])];
  expect(container.args, `${container.name}: args without command replace the CMD`).toBe(undefined);
  return dockerCmd();
}

function dockerCmd(): string[] {
  const cmd = dockerfile()
    .stages.at(-1)!
    .find((i) => i.op === 'CMD');
  return JSON.parse(cmd!.args) as string[];
}

/** The numbered port a probe or Service refers to (by name or number) on a container. */
function containerPort(container: Container, port: number | string): number {
  if (typeof port === 'number') return port;
  const named = container.ports?.find((p) => p.name === port);
  if (!named) throw new Error(`${container.name} has no port named "${port}"`);
  return named.containerPort;
}

describe('sample/k8s manifests', () => {
  it('parse, and every object lives in the one namespace the files create', () => {
    expect(objects.length).toBeGreaterThan(5);
    const namespace = find('Namespace', 'nestjs-k8s-sample');
    for (const o of objects.filter((o) => o.kind !== 'Namespace')) {
      expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe(namespace.metadata.name);
    }
  });

  it('kustomization.yaml lists every manifest of the directory, once', () => {
    const files = readdirSync(K8S_DIR).filter(
      (f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml',
    );
    expect([...new Set(objects.map((o) => o.file))].sort()).toEqual(files.sort());
  });

  it('every Service and workload selects the labels of a pod template that exists', () => {
    const templates = objects.filter((o) => o.spec?.template?.metadata?.labels);
    for (const workload of templates.filter((o) => o.spec.selector)) {
      expect(workload.spec.template.metadata.labels).toMatchObject(
        workload.spec.selector.matchLabels!,
      );
    }
    for (const service of objects.filter((o) => o.kind === 'Service')) {
      const pods = templates.filter(
        (o) =>
          o.kind !== 'Job' &&
          Object.entries(service.spec.selector as Record<string, string>).every(
            ([k, v]) => o.spec.template.metadata.labels[k] === v,
          ),
      );
      expect(pods.length, `Service ${service.metadata.name} selects no workload`).toBe(1);
      // Named target ports exist on the selected pods' containers.
      for (const port of service.spec.ports as Array<{ targetPort: string | number }>) {
        const containers: Container[] = podSpec(pods[0]).containers;
        expect(containers.some((c) => containerPort(c, port.targetPort) > 0)).toBe(true);
      }
    }
  });

  it('CACHE_HOST is the SRV name of the headless memcached Service and its named port', () => {
    const host = configMap().data!.CACHE_HOST;
    // The library's own parser: an SRV name, so each answer brings its own port.
    const targets = parseHostSpec(host, 11211);
    expect(targets).toHaveLength(1);
    expect(targets[0].kind).toBe('srv');
    // _<port name>._<protocol>.<service>.<namespace>.svc.cluster.local: fully qualified, since
    // SRV lookups skip the pod's search domains.
    const [, portName, protocol, serviceName, namespace] =
      /^_([^.]+)\._([^.]+)\.([^.]+)\.([^.]+)\.svc\.cluster\.local$/.exec(host) ?? [];
    expect(serviceName, `${host} is not a fully qualified SRV name`).toBeDefined();
    const service = find('Service', serviceName);
    expect(service.metadata.namespace).toBe(namespace);
    expect(service.spec.clusterIP).toBe('None'); // headless: one record per ready pod
    const port = service.spec.ports.find((p) => p.name === portName);
    expect(port, `Service ${serviceName} has no port named "${portName}"`).toBeDefined();
    expect((port!.protocol ?? 'TCP').toLowerCase()).toBe(protocol);

    // The StatefulSet behind it: pod names under the Service, and the port memcached listens on.
    const statefulSet = objects.find(
      (o) => o.kind === 'StatefulSet' && o.spec.serviceName === serviceName,
    );
    expect(statefulSet).toBeDefined();
    expect(statefulSet!.spec.template.metadata.labels).toMatchObject(service.spec.selector);
    const memcached: Container = podSpec(statefulSet!).containers[0];
    const listens = containerPort(memcached, port!.targetPort!);
    const args = memcached.args ?? [];
    const p = args.indexOf('-p');
    expect(p >= 0 ? Number(args[p + 1]) : 11211).toBe(listens);
    expect(memcached.readinessProbe?.tcpSocket?.port).toBe(port!.targetPort);
  });

  it('containers set only variables the sample reads, and the ones it needs', () => {
    const read = envNamesRead();
    // The contract of DESIGN.md, as the sources spell it.
    for (const name of ['CACHE_HOST', 'CACHE_REFRESH_INTERVAL', 'DATABASE_URL', 'PORT']) {
      expect(read, `the sample no longer reads ${name}`).toContain(name);
    }
    const app = environment(appContainer());
    for (const [container, needed] of [
      [appContainer(), ['CACHE_HOST', 'DATABASE_URL', 'PORT']],
      [initContainer(), ['DATABASE_URL']],
      [jobContainer(), ['DATABASE_URL']],
    ] as const) {
      const env = environment(container);
      for (const name of env.keys()) {
        expect(read, `${container.name} sets ${name}, which the sample never reads`).toContain(
          name,
        );
      }
      for (const name of needed) expect([...env.keys()]).toContain(name);
      // Same database everywhere: the Job migrates the one the pods wait for and use.
      expect(env.get('DATABASE_URL')).toBe(app.get('DATABASE_URL'));
    }
    // Set by the kubelet, never by hand.
    expect([...app.keys()].filter((n) => n.startsWith('KUBERNETES_'))).toEqual([]);
    // In a cluster the system resolver (search domains, CoreDNS) is the right one.
    expect(app.has('CACHE_DNS_SERVERS')).toBe(false);
    expect(Number(app.get('CACHE_REFRESH_INTERVAL'))).toBeGreaterThan(0);
  });

  it('DATABASE_URL is accepted by the sample and names the PostgreSQL of the manifests', () => {
    const url = environment(appContainer()).get('DATABASE_URL')!;
    const options = databaseOptions(url) as { type: string };
    expect(options.type).toBe('postgres');
    const parsed = new URL(url);
    const service = find('Service', parsed.hostname);
    expect(service.spec.ports.map((p: { port: number }) => p.port)).toContain(
      Number(parsed.port || 5432),
    );
    const postgres = objects.find(
      (o) => o.kind === 'StatefulSet' && o.spec.serviceName === parsed.hostname,
    )!;
    const credentials = environment(podSpec(postgres).containers[0]);
    expect(decodeURIComponent(parsed.username)).toBe(credentials.get('POSTGRES_USER'));
    expect(decodeURIComponent(parsed.password)).toBe(credentials.get('POSTGRES_PASSWORD'));
    expect(parsed.pathname.slice(1)).toBe(credentials.get('POSTGRES_DB'));
  });

  it('the init container waits with checkmigrations, bounded; the Job runs migrate', () => {
    const script = dockerCmd()[1];
    const parse = (container: Container): CheckMigrationsArgs | MigrateArgs => {
      const [node, file, ...args] = argvOf(container);
      expect(node).toBe('node');
      expect(file).toBe(script);
      expect(K8S_COMMANDS).toContain(args[0]);
      // The library's own parser: a typo'd option would fail the pod with a usage error.
      return parseCommandArgs(args);
    };
    const wait = parse(initContainer());
    expect(wait.command).toBe('checkmigrations');
    if (wait.command !== 'checkmigrations') return;
    expect(wait.wait).toBe(true);
    // Bounded (0 would wait forever, hiding a failed Job), yet long enough for the Job: at least
    // its lock wait, and at most an hour.
    const migrate = parse(jobContainer());
    expect(migrate.command).toBe('migrate');
    expect(wait.timeout).toBeGreaterThan(0);
    expect(wait.timeout).toBeGreaterThanOrEqual(migrate.timeout);
    expect(wait.timeout).toBeLessThanOrEqual(3600);
    expect(wait.interval).toBeLessThan(wait.timeout);

    expect(job.spec.backoffLimit).toBeGreaterThanOrEqual(1);
    expect(job.spec.backoffLimit).toBeLessThanOrEqual(10);
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThan(migrate.timeout);
    expect(['Never', 'OnFailure']).toContain(podSpec(job).restartPolicy);

    // The app container runs the server: no command word anywhere in its argv.
    const serve = argvOf(appContainer()).slice(2);
    expect(commandOf(serve)).toBeUndefined();
    expect(misplacedCommand(serve)).toBeUndefined();
  });

  it('probes hit the paths the sample serves, on the port it listens on', () => {
    const routes = getRoutes();
    const app = appContainer();
    const port = Number(environment(app).get('PORT'));
    const probes = {
      readiness: app.readinessProbe?.httpGet,
      liveness: app.livenessProbe?.httpGet,
      startup: app.startupProbe?.httpGet,
    };
    for (const [kind, probe] of Object.entries(probes)) {
      expect(probe, `${kind} probe`).toBeDefined();
      expect(routes, `${kind} probe path ${probe!.path} is not a GET route`).toContain(probe!.path);
      expect(containerPort(app, probe!.port)).toBe(port);
    }
    expect(probes.readiness!.path).toMatch(/ready$/);
    expect(probes.liveness!.path).toMatch(/live$/);
    // Liveness checks no dependency: a cache or database outage must not restart every pod.
    expect(probes.liveness!.path).not.toBe(probes.readiness!.path);
  });

  it("the readiness probe waits longer than the indicators' own timeouts", () => {
    // Shorter, and a slow database shows as a kubelet timeout instead of a 503 saying why.
    const seconds = appContainer().readinessProbe?.timeoutSeconds ?? 1;
    expect(seconds * 1000).toBeGreaterThan(
      Math.max(MIGRATIONS_HEALTH_TIMEOUT_MS, MEMCACHED_HEALTH_TIMEOUT_MS),
    );
  });

  it('the grace period covers the sample shutdown: delay, then draining', () => {
    const env = Object.fromEntries(environment(appContainer()));
    // The sample's own reading of its settings, as inside a pod.
    const shutdown = shutdownConfigFromEnv({ ...env, KUBERNETES_SERVICE_HOST: '10.0.0.1' });
    expect(shutdown.delayMs).toBeGreaterThan(0);
    const grace = podSpec(deployment).terminationGracePeriodSeconds ?? 30;
    expect((shutdown.delayMs + shutdown.drainTimeoutMs) / 1000).toBeLessThan(grace);
  });

  it('every container of the sample runs the image the Dockerfile builds', () => {
    const images = new Set([appContainer(), initContainer(), jobContainer()].map((c) => c.image));
    expect(images.size).toBe(1);
    const [image] = images;
    const build = `docker build -f sample/k8s/Dockerfile -t ${image} .`;
    expect(dockerfile().text).toContain(build);
    expect(readFileSync(join(K8S_DIR, 'README.md'), 'utf8')).toContain(build);
    for (const c of [appContainer(), initContainer(), jobContainer()]) {
      // Relative paths in the commands are relative to the image's WORKDIR.
      expect(c.workingDir).toBeUndefined();
    }
  });
});

describe('sample/k8s/Dockerfile', () => {
  const { stages } = dockerfile();
  const build = stages[0];
  const runtime = stages.at(-1)!;

  it('is multi-stage: npm ci and the build in the first, the CMD in the last', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const runs = build.filter((i) => i.op === 'RUN').map((i) => i.args);
    expect(runs.some((r) => /\bnpm ci\b/.test(r))).toBe(true);
    expect(runs.some((r) => /\bnpm run build\b/.test(r))).toBe(true);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.scripts.build).toBeDefined();
    // What the stages copy from the repository exists.
    for (const copy of stages.flat().filter((i) => i.op === 'COPY' && !i.args.startsWith('--'))) {
      const sources = copy.args.split(/\s+/).slice(0, -1);
      for (const source of sources) expect(existsSync(join(ROOT, source)), source).toBe(true);
    }
    expect(runtime.find((i) => i.op === 'WORKDIR')?.args).toBe(
      build.find((i) => i.op === 'WORKDIR')?.args,
    );
  });

  it('CMD runs a file the build produces, and the runtime stage copies it and what it imports', () => {
    const [node, script] = dockerCmd();
    expect(node).toBe('node');
    // The global setup ran `npm run build`, as the image's build stage does.
    expect(existsSync(join(ROOT, script)), `${script} after npm run build`).toBe(true);
    expect(script.startsWith('dist/')).toBe(true);
    const copied = runtime
      .filter((i) => i.op === 'COPY' && i.args.startsWith('--from='))
      .map((i) => i.args.split(/\s+/).slice(1, 3));
    expect(copied).toEqual(
      expect.arrayContaining([
        ['/app/dist', 'dist'],
        ['/app/package.json', './'],
      ]),
    );
  });
});
