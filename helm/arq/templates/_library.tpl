{{/* What Arq needs that the other charts do not: read by the taskq-common templates. */}}
{{- define "taskq.library" -}}
name: Arq
monitorName: the taskq dashboard
monitorPort: 8282
# job_completion_wait is the time limit + 5 s (Arq's job timeout); the worker then needs 10 s
# to cancel what is left and exit (taskq/settings.py, the toolkit).
minGraceMarginSeconds: 15
shutdown: "Arq waits job_completion_wait (the time limit + 5 s) for its running jobs, then needs 10 s to exit"
# No Redis list KEDA's redis trigger could read: Arq's queue is a sorted set, where a running job
# stays and retries wait out their backoff. KEDA reads the exporter's backlog.
kedaReads: ""
# Arq ships no Prometheus endpoint of its own: the exporter's is the one.
metricsComponent: ""
{{- end -}}
