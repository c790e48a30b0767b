import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { ROOT } from './run-command.js';

// sample/k8s read the way `kubectl apply -k sample/k8s` reads it, for the manifest tests.

export const K8S_DIR = join(ROOT, 'sample', 'k8s');

/** The slice of a Kubernetes object the tests read (`spec` stays loose: every kind differs). */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: any;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  /** The file it came from. */
  file: string;
}

export interface Probe {
  httpGet?: { path: string; port: number | string };
  tcpSocket?: { port: number | string };
  exec?: { command: string[] };
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
}

export interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  allowPrivilegeEscalation?: boolean;
  readOnlyRootFilesystem?: boolean;
  privileged?: boolean;
  capabilities?: { add?: string[]; drop?: string[] };
  seccompProfile?: { type: string };
}

export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  ports?: Array<{ name?: string; containerPort: number; protocol?: string; hostPort?: number }>;
  env?: Array<{
    name: string;
    value?: string;
    valueFrom?: { secretKeyRef?: { name: string; key: string } };
  }>;
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  securityContext?: SecurityContext;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}

/** The files kustomization.yaml lists, in its order. */
export function kustomizationResources(): string[] {
  const kustomization = parse(readFileSync(join(K8S_DIR, 'kustomization.yaml'), 'utf8')) as {
    resources?: string[];
  };
  return kustomization.resources ?? [];
}

/** Every object `kubectl apply -k sample/k8s` applies. */
export function loadManifests(): K8sObject[] {
  const objects: K8sObject[] = [];
  for (const file of kustomizationResources()) {
    for (const doc of parseAllDocuments(readFileSync(join(K8S_DIR, file), 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0].message}`);
      const object = doc.toJS() as Omit<K8sObject, 'file'> | null;
      if (object) objects.push({ ...object, file });
    }
  }
  return objects;
}

/** The pod spec of a workload (Deployment, StatefulSet, Job). */
export function podSpecOf(o: K8sObject): any {
  return o.spec.template.spec;
}

/** Every container of a pod spec, init containers included. */
export function containersOf(podSpec: any): Container[] {
  return [...(podSpec.initContainers ?? []), ...podSpec.containers];
}

export interface DockerInstruction {
  op: string;
  args: string;
}

/** sample/k8s/Dockerfile's instructions (continuation lines joined, comments dropped), by stage. */
export function dockerfile(): { stages: DockerInstruction[][]; text: string } {
  const text = readFileSync(join(K8S_DIR, 'Dockerfile'), 'utf8');
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const stages: DockerInstruction[][] = [];
  for (const line of lines) {
    const [, op, args] = /^(\S+)\s+(.*)$/.exec(line) ?? [];
    if (op.toUpperCase() === 'FROM') stages.push([]);
    stages.at(-1)?.push({ op: op.toUpperCase(), args });
  }
  return { stages, text };
}
