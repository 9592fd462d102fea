{{/* What Celery needs that the other charts do not: read by the taskq-common templates. */}}
{{- define "taskq.library" -}}
name: Celery
monitorName: Flower
monitorPort: 5555
# Warm shutdown waits for the running job, which the hard time limit (time limit + 10 s) ends;
# then the worker needs up to 10 s to ack and exit (taskq/settings.py, the toolkit).
minGraceMarginSeconds: 20
shutdown: "Celery's warm shutdown waits for the running job, up to its hard time limit (time limit + 10 s), then needs 10 s to exit"
kedaReads: redis
# Flower serves Prometheus metrics on /metrics.
metricsComponent: monitor
metricsPortName: http
{{- end -}}

{{/*
Kombu keeps the queue "default" as a Redis list of that name: waiting jobs only. Jobs a worker
has taken sit in kombu's "unacked" hash, which KEDA's redis trigger (LLEN) cannot count; the
stabilisation window and warm shutdown keep scale-in from cutting them short.
*/}}
{{- define "taskq.library.kedaTrigger" -}}
type: redis
metadata:
  listName: {{ .queue }}
  listLength: {{ .context.Values.worker.keda.jobsPerWorker | quote }}
  activationListLength: "0"
  {{- include "taskq.kedaRedisMetadata" .context | nindent 2 }}
{{- end -}}

{{- define "taskq.library.kedaSecretTargets" -}}
{{- include "taskq.kedaRedisSecretTargets" . -}}
{{- end -}}
