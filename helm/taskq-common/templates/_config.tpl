{{/*
The settings every recipe container reads, the stop budget derived from the job time limit,
and where Redis and Postgres are.
*/}}

{{/*
The worker's stop grace period, from one value: jobs.timeLimitSeconds. Empty
worker.terminationGracePeriodSeconds means time limit + 30 s (as `make up` does). A value under
the library's minimum fails the render: a graceful stop would then be cut short by SIGKILL,
mid-job. The same number is the worker's STOP_GRACE_PERIOD_S, from which the recipe derives its
own shutdown setting (Dramatiq's --worker-shutdown-timeout, Arq's job_completion_wait); the
recipe refuses to start when it does not fit either.
*/}}
{{- define "taskq.graceSeconds" -}}
{{- $lib := include "taskq.library" . | fromYaml -}}
{{- $limit := int .Values.jobs.timeLimitSeconds -}}
{{- $minimum := add $limit (int $lib.minGraceMarginSeconds) -}}
{{- $grace := int (.Values.worker.terminationGracePeriodSeconds | default (add $limit 30)) -}}
{{- if lt $grace $minimum -}}
{{- fail (printf "worker.terminationGracePeriodSeconds=%d is too short for jobs.timeLimitSeconds=%d: %s, so it must be at least %d s (time limit + %d), or leave it empty to derive it" $grace $limit $lib.shutdown $minimum (int $lib.minGraceMarginSeconds)) -}}
{{- end -}}
{{- $grace -}}
{{- end -}}

{{- define "taskq.configMap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "taskq.componentName" (dict "component" "config" "context" .) }}
  labels:
    {{- include "taskq.labels" (dict "component" "config" "context" .) | nindent 4 }}
data:
  JOB_TIME_LIMIT_S: {{ .Values.jobs.timeLimitSeconds | quote }}
  RETRY_BASE_S: {{ .Values.jobs.retryBaseSeconds | quote }}
  TICK_INTERVAL_S: {{ .Values.jobs.tickIntervalSeconds | quote }}
  STOP_GRACE_PERIOD_S: {{ include "taskq.graceSeconds" . | quote }}
  {{- if .Values.redis.enabled }}
  REDIS_HOST: {{ include "taskq.componentName" (dict "component" "redis" "context" .) }}
  REDIS_PORT: "6379"
  {{- end }}
  {{- if .Values.psp.enabled }}
  PSP_URL: http://{{ include "taskq.componentName" (dict "component" "psp" "context" .) }}:8080
  {{- end }}
  {{- if .Values.postgres.enabled }}
  POSTGRES_HOST: {{ include "taskq.componentName" (dict "component" "postgres" "context" .) }}
  POSTGRES_USER: taskq
  POSTGRES_DB: taskq
  {{- end }}
{{- end -}}

{{- define "taskq.redisSecretName" -}}
{{- if .Values.redis.enabled -}}
{{- .Values.redis.auth.existingSecret | default (include "taskq.componentName" (dict "component" "redis" "context" .)) -}}
{{- else -}}
{{- required "redis.enabled=false needs externalRedis.existingSecret: the name of a Secret holding the broker's URL (key externalRedis.urlKey)" .Values.externalRedis.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "taskq.postgresSecretName" -}}
{{- if .Values.postgres.enabled -}}
{{- .Values.postgres.auth.existingSecret | default (include "taskq.componentName" (dict "component" "postgres" "context" .)) -}}
{{- else -}}
{{- required "postgres.enabled=false needs externalPostgres.existingSecret: the name of a Secret holding the database URL (key externalPostgres.urlKey)" .Values.externalPostgres.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "taskq.monitorSecretName" -}}
{{- .Values.monitor.auth.existingSecret | default (include "taskq.componentName" (dict "component" "monitor" "context" .)) -}}
{{- end -}}

{{/* Secrets the recipe reads, by reference: their values never enter a manifest of ours. */}}
{{- define "taskq.secretEnv" -}}
{{- if .Values.redis.enabled }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "taskq.redisSecretName" . }}, key: redis-password}
{{- else }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef: {name: {{ include "taskq.redisSecretName" . }}, key: {{ .Values.externalRedis.urlKey }}}
{{- end }}
{{- if .Values.postgres.enabled }}
- name: POSTGRES_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "taskq.postgresSecretName" . }}, key: postgres-password}
{{- else }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef: {name: {{ include "taskq.postgresSecretName" . }}, key: {{ .Values.externalPostgres.urlKey }}}
{{- end }}
{{- end -}}

{{/* A component's own env (a map, rendered in key order so the manifest is stable): a string,
or {valueFrom: …} for a key of a Secret or ConfigMap of yours. */}}
{{- define "taskq.extraEnv" -}}
{{- range $name, $value := . }}
- name: {{ $name }}
  {{- if kindIs "map" $value }}
  valueFrom:
    {{- toYaml $value.valueFrom | nindent 4 }}
  {{- else }}
  value: {{ $value | quote }}
  {{- end }}
{{- end }}
{{- end -}}

{{/*
A Secret whose values are generated once: at upgrade the existing ones are kept (lookup), so
a password does not change under a running Redis. (dict "name" … "generate" (list keys)
"fixed" (dict key value) "component" … "context" $)
*/}}
{{- define "taskq.generatedSecret" -}}
{{- $existing := lookup "v1" "Secret" .context.Release.Namespace .name -}}
{{- $data := dict -}}
{{- range $key := .generate -}}
{{- $old := "" -}}
{{- if $existing -}}{{- $old = index ($existing.data | default dict) $key | default "" -}}{{- end -}}
{{- $_ := set $data $key ($old | default (randAlphaNum 32 | b64enc)) -}}
{{- end -}}
{{- range $key, $value := .fixed -}}
{{- $_ := set $data $key ($value | b64enc) -}}
{{- end -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ .name }}
  labels:
    {{- include "taskq.labels" (dict "component" .component "context" .context) | nindent 4 }}
type: Opaque
data:
  {{- range $key, $value := $data }}
  {{ $key }}: {{ $value | quote }}
  {{- end }}
{{- end -}}

{{/*
Rolls the pods when the settings change (they come from a ConfigMap, which a pod reads only at
start). Generated Secrets never change after install (see taskq.generatedSecret); a Secret of
your own is yours to roll.
*/}}
{{- define "taskq.checksumAnnotations" -}}
checksum/config: {{ include "taskq.configMap" . | sha256sum }}
{{- end -}}
