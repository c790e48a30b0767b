import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, Secret, Service } from 'kubernetes-models/v1';
import { containersOf, podSpecOf } from './k8s-manifests.js';
import type { K8sObject, LabelSelector } from './k8s-manifests.js';

// Checks a platform team runs on manifests before applying them, shared by the sample/k8s tests
// and the Helm chart's (test/e2e/helm-chart.e2e-spec.ts): the Kubernetes API schemas
// (kubernetes-models), the restricted Pod Security profile, label selection.

/** The API schema of each kind the sample's manifests and chart use, from kubernetes-models. */
const MODELS: Record<string, new (data: object) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/Secret': Secret,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'batch/v1/Job': Job,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
};

/** Validate an object against its kind's API schema; throws what is wrong. */
export function validateObject(o: K8sObject): void {
  const { file: _file, ...object } = o;
  const Model = MODELS[`${o.apiVersion}/${o.kind}`];
  if (!Model) throw new Error(`${o.file}: no schema for ${o.apiVersion} ${o.kind}`);
  new Model(object).validate();
}

/** Whether a label selector (matchLabels and `In` expressions) selects these labels. */
export function selects(selector: LabelSelector, labels: Record<string, string>): boolean {
  const byLabel = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpression = (selector.matchExpressions ?? []).every((e) => {
    if (e.operator !== 'In') throw new Error(`operator ${e.operator} is not evaluated here`);
    return e.values!.includes(labels[e.key]);
  });
  return byLabel && byExpression;
}

/** Volume types the restricted profile allows (and these manifests use). */
const ALLOWED_VOLUMES = ['configMap', 'emptyDir', 'persistentVolumeClaim', 'secret'];

/**
 * What keeps a workload (Deployment, StatefulSet, Job) out of the restricted Pod Security profile,
 * and out of what a hardened pod has besides (no service-account token, every mount backed by a
 * volume), one line per problem; empty when it fits.
 */
export function restrictedProfileProblems(workload: K8sObject): string[] {
  const problems: string[] = [];
  const pod = podSpecOf(workload);
  const name = `${workload.kind} ${workload.metadata.name}`;
  if (pod.automountServiceAccountToken !== false) problems.push(`${name}: mounts a token`);
  for (const flag of ['hostNetwork', 'hostPID', 'hostIPC'] as const) {
    if (pod[flag]) problems.push(`${name}: ${flag}`);
  }
  for (const volume of pod.volumes ?? []) {
    const type = Object.keys(volume).find((k) => k !== 'name');
    if (!ALLOWED_VOLUMES.includes(type!))
      problems.push(`${name}: volume ${volume.name} is ${type}`);
  }
  const volumes = [
    ...(pod.volumes ?? []),
    ...(workload.spec.volumeClaimTemplates ?? []).map((t) => t.metadata),
  ].map((v) => v.name);
  for (const c of containersOf(pod)) {
    const at = `${name} container ${c.name}`;
    const effective = { ...pod.securityContext, ...c.securityContext };
    if (effective.runAsNonRoot !== true) problems.push(`${at}: runAsNonRoot is not true`);
    if (!Number.isInteger(effective.runAsUser) || (effective.runAsUser ?? 0) <= 0) {
      problems.push(`${at}: runAsUser ${effective.runAsUser} is not a numeric non-root user`);
    }
    if (effective.seccompProfile?.type !== 'RuntimeDefault') {
      problems.push(`${at}: seccomp profile is not RuntimeDefault`);
    }
    const sc = c.securityContext ?? {};
    if (sc.allowPrivilegeEscalation !== false) problems.push(`${at}: may escalate privileges`);
    if (sc.privileged) problems.push(`${at}: privileged`);
    if (JSON.stringify(sc.capabilities?.drop) !== '["ALL"]') {
      problems.push(`${at}: does not drop ALL capabilities`);
    }
    if ((sc.capabilities?.add ?? []).length > 0) problems.push(`${at}: adds capabilities`);
    if (sc.readOnlyRootFilesystem !== true) problems.push(`${at}: writable root filesystem`);
    for (const port of c.ports ?? []) {
      if (port.hostPort !== undefined) problems.push(`${at}: hostPort ${port.hostPort}`);
    }
    for (const mount of c.volumeMounts ?? []) {
      if (!volumes.includes(mount.name))
        problems.push(`${at}: mounts ${mount.name}, no such volume`);
    }
  }
  return problems;
}
