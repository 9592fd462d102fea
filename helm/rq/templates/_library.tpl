{{/* What RQ needs that the other charts do not: read by the taskq-common templates. */}}
{{- define "taskq.library" -}}
name: RQ
monitorName: rq-dashboard
monitorPort: 9181
# Warm shutdown waits for the running job, which its job timeout ends at the time limit; then
# the worker needs up to 20 s to record the failure and exit (taskq/settings.py, the toolkit).
minGraceMarginSeconds: 20
shutdown: "RQ's warm shutdown waits for the running job, which its job timeout stops at the time limit, then needs 20 s to record it and exit"
kedaReads: redis
# RQ ships no Prometheus endpoint.
metricsComponent: ""
{{- end -}}

{{/*
RQ keeps the queue "default" as the Redis list rq:queue:default: waiting jobs only. Running jobs
are in the sorted set rq:wip:default, which KEDA's redis trigger (LLEN) cannot count; the
stabilisation window and warm shutdown keep scale-in from cutting them short.
*/}}
{{- define "taskq.library.kedaTrigger" -}}
type: redis
metadata:
  listName: rq:queue:{{ .queue }}
  listLength: {{ .context.Values.worker.keda.jobsPerWorker | quote }}
  activationListLength: "0"
  {{- include "taskq.kedaRedisMetadata" .context | nindent 2 }}
{{- end -}}

{{- define "taskq.library.kedaSecretTargets" -}}
{{- include "taskq.kedaRedisSecretTargets" . -}}
{{- end -}}
