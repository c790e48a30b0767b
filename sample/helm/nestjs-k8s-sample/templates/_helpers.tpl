{{/* The release's base name: the release name, plus the chart's unless it holds it already. */}}
{{- define "sample.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 53 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 53 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels selecting one component's pods: (dict "ctx" $ "component" "app"). */}}
{{- define "sample.selectorLabels" -}}
app.kubernetes.io/name: {{ .ctx.Chart.Name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Every object's labels: the selector labels and the release's. */}}
{{- define "sample.labels" -}}
{{ include "sample.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version }}
{{- end -}}

{{- define "sample.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "sample.memcachedName" -}}
{{ include "sample.fullname" . }}-memcached
{{- end -}}

{{/* The Secret and key DATABASE_URL comes from; fails on a missing or doubled database setting. */}}
{{- define "sample.databaseSecret" -}}
{{- if and .Values.database.url .Values.database.existingSecret -}}
{{- fail "set database.url or database.existingSecret, not both" -}}
{{- else if .Values.database.existingSecret -}}
name: {{ .Values.database.existingSecret }}
key: {{ .Values.database.existingSecretKey }}
{{- else if .Values.database.url -}}
name: {{ include "sample.fullname" . }}-database
key: DATABASE_URL
{{- else -}}
{{- fail "the sample needs a database: set database.existingSecret (a Secret holding DATABASE_URL) or database.url" -}}
{{- end -}}
{{- end -}}

{{/* CACHE_HOST: the chart's memcached by its SRV name, or cache.host. */}}
{{- define "sample.cacheHost" -}}
{{- if .Values.memcached.enabled -}}
{{- if .Values.cache.host -}}
{{- fail "memcached.enabled sets CACHE_HOST to the chart's memcached: leave cache.host empty, or set memcached.enabled=false" -}}
{{- end -}}
{{/* SRV lookups skip the pod's search domains: fully qualified. */}}
{{- printf "_memcache._tcp.%s.%s.svc.%s" (include "sample.memcachedName" .) .Release.Namespace .Values.clusterDomain -}}
{{- else -}}
{{- .Values.cache.host -}}
{{- end -}}
{{- end -}}

{{/* DATABASE_URL from its Secret, for every container that reads it. */}}
{{- define "sample.databaseEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- include "sample.databaseSecret" . | nindent 6 }}
{{- end -}}

{{/* The restricted Pod Security profile, pod level. */}}
{{- define "sample.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .runAsUser }}
runAsGroup: {{ .runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The restricted Pod Security profile, container level. */}}
{{- define "sample.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ['ALL']
{{- end -}}
