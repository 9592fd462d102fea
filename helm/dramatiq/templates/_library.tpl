{{/* What Dramatiq needs that the other charts do not: read by the taskq-common templates. */}}
{{- define "taskq.library" -}}
name: Dramatiq
monitorName: the taskq dashboard
monitorPort: 8181
# The time limit fires up to 5 s late (Dramatiq checks it once a second per thread, and the
# running C call must return); the main process then needs 10 s to exit. --worker-shutdown-timeout
# is the grace period minus those 10 s (taskq/settings.py, the toolkit).
minGraceMarginSeconds: 15
shutdown: "Dramatiq's worker waits --worker-shutdown-timeout (the grace period - 10 s) for its running jobs, which the time limit stops up to 5 s late"
kedaReads: redis
# The worker processes' Prometheus exporter (dramatiq's Prometheus middleware).
workerMetricsPort: 9191
metricsComponent: worker
metricsPortName: metrics
{{- end -}}

{{/*
Dramatiq's Redis broker keeps the queue "default" as the list dramatiq:default of message ids:
waiting jobs only. Running ones are in per-worker sets (dramatiq:__acks__.<worker>.default),
which KEDA's redis trigger (LLEN of one list) cannot count; the stabilisation window and the
worker's shutdown timeout keep scale-in from cutting them short.
*/}}
{{- define "taskq.library.kedaTrigger" -}}
type: redis
metadata:
  listName: dramatiq:{{ .queue }}
  listLength: {{ .context.Values.worker.keda.jobsPerWorker | quote }}
  activationListLength: "0"
  {{- include "taskq.kedaRedisMetadata" .context | nindent 2 }}
{{- end -}}

{{- define "taskq.library.kedaSecretTargets" -}}
{{- include "taskq.kedaRedisSecretTargets" . -}}
{{- end -}}
