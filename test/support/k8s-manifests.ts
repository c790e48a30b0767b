import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { ROOT } from './run-command.js';

// sample/k8s read the way `kubectl apply -k sample/k8s` reads it, for the manifest tests.

export const K8S_DIR = join(ROOT, 'sample', 'k8s');

/** The slice of a Kubernetes object the tests read. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  /** The fields of every kind's spec the tests read, merged: each kind fills its own. */
  spec: K8sSpec;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  /** The file it came from. */
  file: string;
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

export interface NetworkPolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr: string };
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Array<{ name: string } & Record<string, unknown>>;
  securityContext: SecurityContext;
  automountServiceAccountToken?: boolean;
  restartPolicy?: string;
  terminationGracePeriodSeconds?: number;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  topologySpreadConstraints?: Array<{
    topologyKey: string;
    maxSkew: number;
    whenUnsatisfiable: string;
    labelSelector: LabelSelector;
  }>;
}

/**
 * Workload (Deployment, StatefulSet, Job), Service, PodDisruptionBudget and NetworkPolicy spec
 * fields in one type; a field a kind lacks is simply absent at run time.
 */
export interface K8sSpec {
  // Workloads.
  template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  replicas: number;
  serviceName?: string;
  volumeClaimTemplates?: Array<{ metadata: { name: string } }>;
  backoffLimit?: number;
  activeDeadlineSeconds?: number;
  ttlSecondsAfterFinished?: number;
  // Workloads and PodDisruptionBudgets: a label selector; Services: the labels themselves.
  selector: LabelSelector & Record<string, string>;
  // Services.
  clusterIP?: string;
  ports: Array<{ name?: string; port: number; targetPort?: string | number; protocol?: string }>;
  // PodDisruptionBudgets.
  minAvailable: number;
  maxUnavailable?: number;
  // NetworkPolicies.
  podSelector: LabelSelector;
  policyTypes: string[];
  ingress?: Array<{ from?: NetworkPolicyPeer[]; ports?: Array<{ port: number }> }>;
  egress: Array<{ to?: NetworkPolicyPeer[]; ports: Array<{ port: number }> }>;
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
export function podSpecOf(o: K8sObject): PodSpec {
  return o.spec.template.spec;
}

/** Every container of a pod spec, init containers included. */
export function containersOf(podSpec: PodSpec): Container[] {
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
