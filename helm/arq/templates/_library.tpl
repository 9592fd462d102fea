{{/* What Arq needs that the other charts do not: read by the taskq-common templates. */}}
{{- define "taskq.library" -}}
name: Arq
monitorName: the taskq dashboard
monitorPort: 8282
# job_completion_wait is the time limit + 5 s (Arq's job timeout); the worker then needs 10 s
# to cancel what is left and exit (taskq/settings.py, the toolkit).
minGraceMarginSeconds: 15
shutdown: "Arq waits job_completion_wait (the time limit + 5 s) for its running jobs, then needs 10 s to exit"
kedaReads: monitor
# Arq ships no Prometheus endpoint.
metricsComponent: ""
{{- end -}}

{{/*
Arq's queue is the sorted set arq:queue (scored by when a job is due), and a running job stays in
it, marked by an arq:in-progress:<id> key. KEDA's redis trigger only runs LLEN, which fails on a
sorted set. So KEDA asks the monitor instead (metrics-api trigger): /api/depth's "backlog" is the
jobs that are due and waiting plus the ones running, so busy workers are counted and not
scaled away; retries waiting for their backoff are not.
*/}}
{{- define "taskq.library.kedaTrigger" -}}
{{- with .context -}}
{{- if not .Values.monitor.enabled -}}
{{- fail "worker.keda.enabled needs monitor.enabled: KEDA reads Arq's queue depth from the monitor's /api/depth (Arq's queue is a sorted set, which KEDA's redis trigger cannot read)" -}}
{{- end -}}
type: metrics-api
metadata:
  url: {{ printf "http://%s.%s.svc:8282/api/depth" (include "taskq.componentName" (dict "component" "monitor" "context" .)) .Release.Namespace | quote }}
  valueLocation: backlog
  targetValue: {{ .Values.worker.keda.jobsPerWorker | quote }}
  activationTargetValue: "0"
  authMode: basic
{{- end -}}
{{- end -}}

{{- define "taskq.library.kedaSecretTargets" -}}
- {parameter: username, name: {{ include "taskq.monitorSecretName" . }}, key: username}
- {parameter: password, name: {{ include "taskq.monitorSecretName" . }}, key: password}
{{- end -}}
