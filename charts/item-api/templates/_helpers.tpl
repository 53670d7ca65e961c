{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "item-api.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name; the release name alone when it already contains the chart name. */}}
{{- define "item-api.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "item-api.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "item-api.labels" -}}
helm.sh/chart: {{ include "item-api.chart" . }}
{{ include "item-api.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "item-api.selectorLabels" -}}
app.kubernetes.io/name: {{ include "item-api.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* An all-digit tag reaches the chart as a number (float64 from YAML files), which would print as 1.234567e+06. */}}
{{- define "item-api.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if kindIs "float64" $tag }}{{ $tag = int64 $tag }}{{ end }}
{{- printf "%s:%s" .Values.image.repository (toString $tag) }}
{{- with .Values.image.digest }}@{{ . }}{{ end }}
{{- end }}

{{- define "item-api.secretName" -}}
{{- .Values.existingSecret | default (printf "%s-db" (include "item-api.fullname" .)) }}
{{- end }}

{{/* The migration Job's credentials: the hook copy of the chart's Secret, or the existing one. */}}
{{- define "item-api.migrationSecretName" -}}
{{- .Values.existingSecret | default (printf "%s-db-migrate" (include "item-api.fullname" .)) }}
{{- end }}

{{- define "item-api.secretKey" -}}
{{- if .Values.existingSecret }}{{ .Values.existingSecretKey }}{{ else }}DATABASE_URL{{ end }}
{{- end }}

{{/* postgres:// URL of the chart-managed Secret; credentials are percent-encoded. */}}
{{- define "item-api.databaseUrl" -}}
{{- $db := .Values.database }}
{{- if $db.url }}
{{- $db.url }}
{{- else }}
{{- $auth := urlquery $db.user }}
{{- if $db.password }}{{ $auth = printf "%s:%s" $auth (urlquery $db.password) }}{{ end }}
{{- printf "postgres://%s@%s:%d/%s" $auth $db.host (int $db.port) $db.name }}
{{- end }}
{{- end }}

{{/*
Seconds the pod needs from the start of termination to a clean exit. The app exits
at the latest delay + drain + cleanup + 1 s after SIGTERM; the kubelet's clock starts
earlier, at preStop, so the preStop sleep adds to it, plus a margin for the kubelet
and for signal delivery.
*/}}
{{- define "item-api.requiredGracePeriodSeconds" -}}
{{- $s := .Values.shutdown }}
{{- $appMs := add (int $s.delayMs) (int $s.drainTimeoutMs) (int $s.cleanupTimeoutMs) 1000 }}
{{- $appSeconds := div (add $appMs 999) 1000 }}
{{- add $appSeconds (int .Values.preStopSleepSeconds) (int $s.graceMarginSeconds) }}
{{- end }}

{{/* The grace period to render: the explicit value if it covers the budgets, else fail. */}}
{{- define "item-api.terminationGracePeriodSeconds" -}}
{{- $required := include "item-api.requiredGracePeriodSeconds" . | int }}
{{- $explicit := .Values.terminationGracePeriodSeconds }}
{{- if or (kindIs "invalid" $explicit) (eq (toString $explicit) "") }}
{{- $required }}
{{- else if lt (int $explicit) $required }}
{{- fail (printf "terminationGracePeriodSeconds %d is below the %d seconds the shutdown budgets need (ceil((shutdown.delayMs %d + shutdown.drainTimeoutMs %d + shutdown.cleanupTimeoutMs %d + 1000) / 1000) + preStopSleepSeconds %d + shutdown.graceMarginSeconds %d); raise it or leave it empty to derive it" (int $explicit) $required (int .Values.shutdown.delayMs) (int .Values.shutdown.drainTimeoutMs) (int .Values.shutdown.cleanupTimeoutMs) (int .Values.preStopSleepSeconds) (int .Values.shutdown.graceMarginSeconds)) }}
{{- else }}
{{- int $explicit }}
{{- end }}
{{- end }}

{{- define "item-api.replicasAboveOne" -}}
{{- $n := ternary .Values.autoscaling.minReplicas .Values.replicaCount .Values.autoscaling.enabled }}
{{- if gt (int $n) 1 }}true{{ end }}
{{- end }}

{{/* Pod-level settings shared by every pod the chart renders; refuses non-restricted values first. */}}
{{- define "item-api.podSecurity" -}}
{{- include "item-api.assertRestricted" . }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.serviceAccount.name }}
serviceAccountName: {{ . }}
{{- end }}
automountServiceAccountToken: false
# Service links inject an env var per Service in the namespace; the app reads none.
enableServiceLinks: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/* Settings shared by the app and the migration Job; pass (dict "root" $ "secretName" name). */}}
{{- define "item-api.commonEnv" -}}
{{- $root := .root }}
- name: NODE_ENV
  value: production
- name: LOG_LEVEL
  value: {{ $root.Values.app.logLevel | quote }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ include "item-api.secretKey" $root }}
- name: DB_POOL_MAX
  value: {{ $root.Values.database.poolMax | int | quote }}
- name: DB_POOL_ACQUIRE_TIMEOUT_MS
  value: {{ $root.Values.database.poolAcquireTimeoutMs | int | quote }}
- name: DB_STATEMENT_TIMEOUT_MS
  value: {{ $root.Values.database.statementTimeoutMs | int | quote }}
{{- end }}

{{/* Telemetry settings; only the server loads the OpenTelemetry bootstrap. */}}
{{- define "item-api.otelEnv" -}}
- name: OTEL_SDK_DISABLED
  value: {{ .Values.otel.sdkDisabled | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ .Values.otel.serviceName | default (include "item-api.fullname" .) | quote }}
- name: OTEL_TRACES_EXPORTER
  value: {{ .Values.otel.tracesExporter | quote }}
- name: OTEL_METRICS_EXPORTER
  value: {{ .Values.otel.metricsExporter | quote }}
{{- with .Values.otel.exporterOtlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- end }}

{{- define "item-api.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end }}
