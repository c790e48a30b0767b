import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  K8S_DIR,
  containersOf,
  dockerfile,
  loadManifests,
  podSpecOf,
} from '../support/k8s-manifests.js';
import type { K8sObject } from '../support/k8s-manifests.js';
import {
  restrictedProfileProblems,
  selects,
  validateObject as validate,
} from '../support/k8s-checks.js';
import { ROOT } from '../support/run-command.js';

// sample/k8s against the Kubernetes API schemas (kubernetes-models), the restricted Pod
// Security profile, and the rest of what a platform team checks before applying it: disruption
// budgets, spreading, network policy, pinned images, a production-only image, a migration Job
// that survives the next release. No cluster needed. `dist/` is built by the global setup.

const objects = loadManifests();
const workloads = objects.filter((o) => o.spec?.template?.spec);
const byKind = (kind: string): K8sObject[] => objects.filter((o) => o.kind === kind);
const labelsOf = (o: K8sObject): Record<string, string> => o.spec.template.metadata.labels;

/** The workloads whose pods may open connections to `target`'s pods; 'anyone' if unrestricted. */
function allowedIn(target: K8sObject): Set<string> | 'anyone' {
  const policies = byKind('NetworkPolicy').filter(
    (p) => p.spec.policyTypes.includes('Ingress') && selects(p.spec.podSelector, labelsOf(target)),
  );
  if (policies.length === 0) return 'anyone';
  const allowed = new Set<string>();
  for (const rule of policies.flatMap((p) => p.spec.ingress ?? [])) {
    if (!rule.from) return 'anyone';
    for (const peer of rule.from) {
      const { podSelector } = peer;
      if (!podSelector || peer.namespaceSelector || peer.ipBlock) return 'anyone';
      for (const w of workloads.filter((w) => selects(podSelector, labelsOf(w)))) {
        allowed.add(w.metadata.name);
      }
    }
  }
  return allowed;
}

describe('sample/k8s against the Kubernetes API schemas', () => {
  it.each(objects.map((o) => [`${o.kind} ${o.metadata.name}`, o] as const))(
    '%s is valid',
    (_name, o) => {
      expect(() => validate(o)).not.toThrow();
    },
  );

  it('the schemas catch a mistake (a user id given as a string)', () => {
    const app = byKind('Deployment')[0];
    const broken = structuredClone(app);
    Object.assign(podSpecOf(broken).securityContext, { runAsUser: '1000' });
    expect(() => validate(broken)).toThrow(/runAsUser must be integer/);
  });

  it('kustomization.yaml is a Kustomization of local files only', () => {
    const text = readFileSync(join(K8S_DIR, 'kustomization.yaml'), 'utf8');
    expect(text).toMatch(/^apiVersion: kustomize\.config\.k8s\.io\/v1beta1$/m);
    expect(text).toMatch(/^kind: Kustomization$/m);
    expect(new Set(objects.map((o) => o.file)).size).toBeGreaterThan(5);
  });
});

describe('sample/k8s fits the restricted Pod Security profile', () => {
  it('the check catches a pod that breaks it (root, a capability, a host path)', () => {
    const broken = structuredClone(workloads[0]);
    const pod = podSpecOf(broken);
    pod.securityContext.runAsUser = 0;
    containersOf(pod)[0].securityContext!.capabilities = { drop: ['ALL'], add: ['NET_ADMIN'] };
    pod.volumes = [...(pod.volumes ?? []), { name: 'host', hostPath: { path: '/' } }];
    expect(restrictedProfileProblems(broken)).toEqual([
      expect.stringContaining('volume host is hostPath'),
      expect.stringContaining('is not a numeric non-root user'),
      expect.stringContaining('adds capabilities'),
    ]);
  });

  it('the namespace enforces it', () => {
    const namespace = byKind('Namespace')[0];
    expect(namespace.metadata.labels).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'restricted',
    });
  });

  describe.each(workloads.map((w) => [`${w.kind} ${w.metadata.name}`, w] as const))(
    '%s',
    (_name, workload) => {
      const containers = containersOf(podSpecOf(workload));

      it('runs as a numeric non-root user with RuntimeDefault seccomp, drops every capability, forbids privilege escalation, has a read-only root filesystem, mounts no token and nothing of the host', () => {
        expect(restrictedProfileProblems(workload)).toEqual([]);
      });

      it('pins its images to an exact version', () => {
        // major.minor.patch; PostgreSQL's own versions have two parts (17.6 is exact).
        for (const c of containers) {
          expect(c.image, c.name).toMatch(/^[a-z0-9./-]+:\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?$/);
        }
      });
    },
  );
});

describe('sample/k8s availability and isolation', () => {
  it('a PodDisruptionBudget keeps the app and memcached serving through drains, and lets drains progress', () => {
    for (const name of ['sample', 'memcached']) {
      const workload = workloads.find((w) => w.metadata.name === name)!;
      const budgets = byKind('PodDisruptionBudget').filter((b) =>
        selects(b.spec.selector, labelsOf(workload)),
      );
      expect(budgets, name).toHaveLength(1);
      const { minAvailable, maxUnavailable } = budgets[0].spec;
      const replicas: number = workload.spec.replicas;
      const mayEvict = maxUnavailable ?? replicas - minAvailable;
      expect(mayEvict, name).toBeGreaterThanOrEqual(1);
      expect(mayEvict, name).toBeLessThan(replicas);
    }
  });

  it('memcached members are spread one per node', () => {
    const memcached = workloads.find((w) => w.metadata.name === 'memcached')!;
    const spread = podSpecOf(memcached).topologySpreadConstraints ?? [];
    const perNode = spread.find((c) => c.topologyKey === 'kubernetes.io/hostname');
    expect(perNode).toMatchObject({ maxSkew: 1, whenUnsatisfiable: 'DoNotSchedule' });
    expect(selects(perNode!.labelSelector, labelsOf(memcached))).toBe(true);
  });

  it('NetworkPolicy: only the app reaches memcached, only the app and the migration Job the database', () => {
    const named = (name: string) => workloads.find((w) => w.metadata.name === name)!;
    const migrate = byKind('Job')[0].metadata.name;
    expect(allowedIn(named('memcached'))).toEqual(new Set(['sample']));
    expect(allowedIn(named('postgres'))).toEqual(new Set(['sample', migrate]));
    // The app itself takes traffic from anywhere, on its HTTP port only.
    expect(allowedIn(named('sample'))).toBe('anyone');
    // A pod no policy names gets nothing: the default deny covers the whole namespace.
    const denyAll = byKind('NetworkPolicy').find(
      (p) => Object.keys(p.spec.podSelector).length === 0 && !p.spec.ingress,
    );
    expect(denyAll?.spec.policyTypes).toEqual(['Ingress']);
  });

  it('NetworkPolicy: the app and the Job go out to DNS, memcached and the database only', () => {
    for (const workload of [
      workloads.find((w) => w.metadata.name === 'sample')!,
      byKind('Job')[0],
    ]) {
      const egress = byKind('NetworkPolicy')
        .filter((p) => p.spec.policyTypes.includes('Egress'))
        .filter((p) => selects(p.spec.podSelector, labelsOf(workload)))
        .flatMap((p) => p.spec.egress);
      const ports = egress.flatMap((rule) => rule.ports.map((p) => p.port)).sort();
      expect(ports).toEqual([11211, 53, 53, 5432].sort());
      for (const rule of egress) expect(rule.to?.length, 'a rule without `to`').toBeGreaterThan(0);
    }
  });
});

describe('sample/k8s release and image', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const { stages } = dockerfile();
  const runtime = stages.at(-1)!;

  it("the image is tagged with the package's version, and the migration Job is named after it", () => {
    const job = byKind('Job')[0];
    const images = new Set(
      workloads.flatMap((w) => containersOf(podSpecOf(w))).map((c) => c.image),
    );
    expect(images).toContain(`nestjs-k8s-sample:${pkg.version}`);
    // A Job's template is immutable: a new release must be a new Job, not an edit of the old one.
    const tag = containersOf(podSpecOf(job))[0].image.split(':')[1];
    expect(job.metadata.name).toBe(`sample-migrate-${tag.replaceAll('.', '-')}`);
    expect(job.spec.ttlSecondsAfterFinished).toBeGreaterThan(0);
    // Synced by Argo CD or templated into a Helm chart: a hook that runs before the rest.
    expect(job.metadata.annotations).toMatchObject({
      'argocd.argoproj.io/hook': 'PreSync',
      'argocd.argoproj.io/hook-delete-policy': 'BeforeHookCreation',
      'helm.sh/hook': 'pre-install,pre-upgrade',
    });
  });

  it('the Dockerfile pins its base images and runs as the numeric user the pods declare', () => {
    for (const from of stages.map((s) => s[0].args)) expect(from).toMatch(/:\d+\.\d+\.\d+-/);
    const user = runtime.filter((i) => i.op === 'USER').at(-1)?.args;
    expect(user).toMatch(/^\d+:\d+$/);
    const [uid, gid] = user!.split(':').map(Number);
    for (const w of workloads.filter((w) =>
      containersOf(podSpecOf(w))[0].image.startsWith('nestjs-k8s-sample:'),
    )) {
      expect(podSpecOf(w).securityContext).toMatchObject({ runAsUser: uid, runAsGroup: gid });
    }
  });

  it('the runtime stage gets production dependencies only, from their own lock file', () => {
    const copies = runtime.filter((i) => i.op === 'COPY').map((i) => i.args);
    const modules = copies.find((c) => /\snode_modules$/.test(c))!;
    const [, stage] = /^--from=(\S+)/.exec(modules) ?? [];
    const deps = stages.find((s) => s[0].args.endsWith(` AS ${stage}`))!;
    expect(deps.some((i) => i.op === 'RUN' && /npm ci\b.*--omit=dev/.test(i.args))).toBe(true);
    expect(deps.find((i) => i.op === 'COPY')?.args).toContain(
      'sample/k8s/runtime/package-lock.json',
    );
  });

  it('the runtime dependencies are what dist/ imports, at the versions the tests ran', () => {
    const runtimeDir = join(K8S_DIR, 'runtime');
    const manifest = JSON.parse(readFileSync(join(runtimeDir, 'package.json'), 'utf8'));
    const lock = JSON.parse(readFileSync(join(runtimeDir, 'package-lock.json'), 'utf8'));
    const dependencies: Record<string, string> = manifest.dependencies;
    // The lock file was made from this package.json.
    expect(lock.packages[''].dependencies).toEqual(dependencies);
    for (const [name, version] of Object.entries(dependencies)) {
      const installed = JSON.parse(
        readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8'),
      ).version;
      expect(version, `${name}: the tests ran ${installed}`).toBe(installed);
      expect(lock.packages[`node_modules/${name}`].version, name).toBe(version);
    }
    // Optional peers the library loads only when present (prom-client, …) may stay out.
    const optional = Object.keys(pkg.peerDependenciesMeta ?? {}).filter(
      (name) => pkg.peerDependenciesMeta[name].optional,
    );
    // The scan sees imports at all (else the loop below proves nothing).
    expect(bareImports(join(ROOT, 'dist/sample'))).toContain('@nestjs/core');
    for (const [dir, mayLack] of [
      ['dist/sample', []],
      ['dist/lib', optional],
    ] as const) {
      for (const specifier of bareImports(join(ROOT, dir))) {
        if (mayLack.includes(specifier as never)) continue;
        expect(Object.keys(dependencies), `${dir} imports ${specifier}`).toContain(specifier);
      }
    }
  });
});

/** The packages (not `node:` modules, not relative paths, not the library itself) a built tree imports. */
function bareImports(dir: string): Set<string> {
  const found = new Set<string>();
  const walk = (path: string): void => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const child = join(path, entry.name);
      if (entry.isDirectory()) walk(child);
      else if (entry.name.endsWith('.js')) {
        const text = readFileSync(child, 'utf8');
        const statements = [
          /^\s*(?:import|export)\s[^;]*?\bfrom\s*['"]([^'"]+)['"]/gm,
          /^\s*import\s*['"]([^'"]+)['"]/gm,
          /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
        ];
        for (const specifier of statements.flatMap((r) => [...text.matchAll(r)].map((m) => m[1]))) {
          if (specifier.startsWith('.') || specifier.startsWith('node:')) continue;
          const parts = specifier.split('/');
          const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
          if (name !== 'nestjs-k8s') found.add(name);
        }
      }
    }
  };
  walk(dir);
  return found;
}
