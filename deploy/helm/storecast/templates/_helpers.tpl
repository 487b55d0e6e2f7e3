{{/* Names, labels and shared pod settings. */}}

{{- define "storecast.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* A component's resource name: <fullname>-<component>. Call with (list $ "ingest"). */}}
{{- define "storecast.componentName" -}}
{{- printf "%s-%s" (include "storecast.fullname" (index . 0)) (index . 1) -}}
{{- end -}}

{{- define "storecast.selectorLabels" -}}
app.kubernetes.io/name: {{ (index . 0).Chart.Name }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "storecast.labels" -}}
{{ include "storecast.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" (index . 0).Chart.Name (index . 0).Chart.Version }}
app.kubernetes.io/version: {{ (index . 0).Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ (index . 0).Release.Service }}
{{- end -}}

{{- define "storecast.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "storecast.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "storecast.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* Where the gateway and internal callers find a service: its Service name and gRPC port. */}}
{{- define "storecast.serviceTarget" -}}
{{- printf "%s:%d" (include "storecast.componentName" .) (int (index . 0).Values.grpc.port) -}}
{{- end -}}

{{/* How each component's pods are run: ingest keeps its write-ahead log on a
volume of its own, so its pods need stable names and volumes (a StatefulSet). */}}
{{- define "storecast.workloadKind" -}}
{{- ternary "StatefulSet" "Deployment" (eq . "ingest") -}}
{{- end -}}

{{/* Whether the ingest pods acknowledge production PUTs from a write-ahead log (services.ingest.log). */}}
{{- define "storecast.ingestLog" -}}
{{- if and .Values.services.ingest.enabled .Values.services.ingest.log.enabled }}true{{ end -}}
{{- end -}}

{{/* The headless Service that gives each ingest pod its DNS name (the StatefulSet's serviceName). */}}
{{- define "storecast.ingestPodsService" -}}
{{- include "storecast.componentName" (list . "ingest-pods") -}}
{{- end -}}

{{/* STORECAST_INGEST_REPLICAS of the query pods: every ingest pod's own DNS name
and gRPC port, <statefulset>-<i>.<pods service>.<namespace>.svc.<cluster domain>:<port>
for i in 0..replicas-1. A read asks each of them for the writes it acknowledged. */}}
{{- define "storecast.ingestReplicas" -}}
{{- $statefulSet := include "storecast.componentName" (list . "ingest") -}}
{{- $pods := include "storecast.ingestPodsService" . -}}
{{- $targets := list -}}
{{- range $ordinal := until (int .Values.services.ingest.replicas) -}}
{{- $targets = append $targets (printf "%s-%d.%s.%s.svc.%s:%d" $statefulSet $ordinal $pods $.Release.Namespace $.Values.clusterDomain (int $.Values.grpc.port)) -}}
{{- end -}}
{{- join "," $targets -}}
{{- end -}}

{{/* The ingest pods' write-ahead log and hot tier (services.ingest.log). */}}
{{- define "storecast.ingestLogEnv" -}}
{{- $log := .Values.services.ingest.log -}}
{{- if $log.enabled -}}
- name: STORECAST_LOG
  value: "1"
- name: STORECAST_LOG_DIR
  value: {{ printf "%s/wal" (include "storecast.ingestVolumePath" .) | quote }}
- name: STORECAST_LOG_MAX_BYTES
  value: {{ $log.maxBytes | int64 | quote }}
- name: STORECAST_FLUSH_INTERVAL
  value: {{ $log.flushInterval | quote }}
- name: STORECAST_FLUSH_MAX_ROWS
  value: {{ $log.flushMaxRows | int64 | quote }}
- name: STORECAST_HOT_WINDOW
  value: {{ $log.hotWindow | quote }}
- name: STORECAST_HOT_MAX_BYTES
  value: {{ $log.hotMaxBytes | int64 | quote }}
{{- else -}}
{{- /* On by default in the code, and its default directory is on the read-only root. */}}
- name: STORECAST_LOG
  value: "0"
{{- end -}}
{{- end -}}

{{/* Where the ingest pod's volume (its PersistentVolumeClaim) is mounted. */}}
{{- define "storecast.ingestVolumePath" -}}
/var/lib/storecast
{{- end -}}

{{/* The store's URL and cluster, for the services and the migration. */}}
{{- define "storecast.storeEnv" -}}
- name: STORECAST_STORE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.store }}
      key: url
{{- if .Values.store.cluster }}
- name: STORECAST_CLICKHOUSE_CLUSTER
  value: {{ .Values.store.cluster | quote }}
{{- end }}
- name: STORECAST_STORE_CONNECTIONS
  value: {{ .Values.store.connections | quote }}
- name: STORECAST_BATCH_MODE
  value: {{ .Values.store.batchMode | quote }}
- name: STORECAST_BATCH_MAX_ROWS
  value: {{ .Values.store.batchMaxRows | int64 | quote }}
- name: STORECAST_BATCH_GATHER_MS
  value: {{ .Values.store.batchGatherMs | quote }}
- name: STORECAST_ROLLUPS
  value: {{ ternary "1" "0" .Values.store.rollups | quote }}
{{- with .Values.store.retention }}
- name: STORECAST_RETENTION
  value: {{ include "storecast.retention" . | quote }}
{{- end }}
{{- end -}}

{{/* store.retention ({key: days}) as STORECAST_RETENTION's "key=days,..." */}}
{{- define "storecast.retention" -}}
{{- $items := list -}}
{{- range $key, $days := . -}}
{{- $items = append $items (printf "%s=%d" $key (int $days)) -}}
{{- end -}}
{{- join "," $items -}}
{{- end -}}

{{/* Logging and metrics of a long-running component (docs/operations/observability.md). */}}
{{- define "storecast.observabilityEnv" -}}
- name: STORECAST_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- if .Values.metrics.enabled }}
- name: STORECAST_METRICS_HOST
  value: "0.0.0.0"
- name: STORECAST_METRICS_PORT
  value: {{ .Values.metrics.port | quote }}
{{- end }}
{{- with .Values.tracing.otlpEndpoint }}
- name: STORECAST_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: STORECAST_INFLIGHT_BODY_BYTES
  value: {{ .Values.admission.inflightBodyBytes | int64 | quote }}
- name: STORECAST_INFLIGHT_RECORDS
  value: {{ .Values.admission.inflightRecords | int64 | quote }}
{{- with .Values.admission.rateLimit }}
- name: STORECAST_RATE_LIMIT
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* The metrics container port, named for the metrics Service and the NetworkPolicy. */}}
{{- define "storecast.metricsPort" -}}
{{- if .Values.metrics.enabled -}}
- name: metrics
  containerPort: {{ .Values.metrics.port }}
  protocol: TCP
{{- end }}
{{- end -}}

{{/* The NetworkPolicy rule that lets metrics.scrapers reach the metrics port. */}}
{{- define "storecast.metricsIngress" -}}
{{- if .Values.metrics.enabled -}}
- ports:
    - port: metrics
      protocol: TCP
  {{- with .Values.metrics.scrapers }}
  from:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "storecast.podSettings" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
