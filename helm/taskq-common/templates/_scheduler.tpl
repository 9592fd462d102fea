{{/*
One scheduler, never more: Recreate stops the old pod before the new one starts (a rolling
update would run two side by side). The recipes also claim each slot in Redis (SET NX), so two
schedulers that do meet, e.g. on a partitioned node, still fire each slot once.
*/}}
{{- define "taskq.scheduler.deployment" -}}
{{- $container := include "taskq.scheduler.container" . -}}
{{- include "taskq.recipeDeployment" (dict "component" "scheduler" "context" . "replicas" 1 "strategy" (dict "type" "Recreate") "migrate" true "container" $container) -}}
{{- end -}}

{{- define "taskq.scheduler.container" -}}
# Touched at every loop of the scheduler, at least every 5 s.
startupProbe:
  {{- include "taskq.heartbeatProbe" (dict "file" "/tmp/beat-heartbeat" "maxAge" 30 "probe" .Values.scheduler.startupProbe) | nindent 2 }}
livenessProbe:
  {{- include "taskq.heartbeatProbe" (dict "file" "/tmp/beat-heartbeat" "maxAge" 30 "probe" .Values.scheduler.livenessProbe) | nindent 2 }}
{{- end -}}
