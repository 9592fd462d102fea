{{- define "taskq.worker.deployment" -}}
{{- include "taskq.autoscalingGuard" . -}}
{{- $autoscaled := or .Values.worker.keda.enabled .Values.worker.hpa.enabled -}}
{{- $container := include "taskq.worker.container" . -}}
{{/* A rollout adds the new pod before the old one is told to stop; the old one finishes its
jobs within the grace period. */}}
{{- $strategy := dict "type" "RollingUpdate" "rollingUpdate" (dict "maxSurge" 1 "maxUnavailable" 0) -}}
{{- include "taskq.recipeDeployment" (dict "component" "worker" "context" . "replicas" (ternary nil .Values.worker.replicas $autoscaled) "strategy" $strategy "grace" (include "taskq.graceSeconds" .) "migrate" true "container" $container) -}}
{{- end -}}

{{- define "taskq.worker.container" -}}
{{- $lib := include "taskq.library" . | fromYaml -}}
{{- with $lib.workerMetricsPort }}
ports:
  - {name: metrics, containerPort: {{ . }}, protocol: TCP}
{{- end }}
# Passes once the worker's main loop has run (its first heartbeat); until then liveness waits.
startupProbe:
  {{- include "taskq.heartbeatProbe" (dict "file" "/tmp/worker-heartbeat" "maxAge" 30 "probe" .Values.worker.startupProbe) | nindent 2 }}
# The worker touches /tmp/worker-heartbeat every 5 s from its main loop, also while jobs run: a
# busy worker is never restarted. With the defaults, a worker whose loop is stuck for
# 30 s + 4 × 15 s is restarted (its job comes back: acks are late).
livenessProbe:
  {{- include "taskq.heartbeatProbe" (dict "file" "/tmp/worker-heartbeat" "maxAge" 30 "probe" .Values.worker.livenessProbe) | nindent 2 }}
readinessProbe:
  {{- include "taskq.heartbeatProbe" (dict "file" "/tmp/worker-heartbeat" "maxAge" 15 "probe" .Values.worker.readinessProbe) | nindent 2 }}
{{- end -}}

{{- define "taskq.worker.podDisruptionBudget" -}}
{{- if .Values.worker.podDisruptionBudget.enabled -}}
{{- include "taskq.podDisruptionBudget" (dict "component" "worker" "context" .) -}}
{{- end -}}
{{- end -}}

{{/* Checked once, by the worker Deployment, which every render has. */}}
{{- define "taskq.autoscalingGuard" -}}
{{- if and .Values.worker.keda.enabled .Values.worker.hpa.enabled -}}
{{- fail "worker.keda.enabled and worker.hpa.enabled are both true: two autoscalers would fight over the worker's replicas. Choose one (KEDA scales on queue depth, the HPA on CPU)." -}}
{{- end -}}
{{- end -}}

{{/*
Scales workers on the backlog (KEDA): jobs waiting plus jobs running, read from the exporter's
/backlog (a metrics-api trigger), the same for every library, so busy workers are never taken
for idle ones. worker.keda.source "redis" is the fallback without the exporter (Celery, RQ,
Dramatiq): KEDA's redis trigger on each queue's list, which counts waiting jobs only. Scale-down
waits out a stabilisation window, and a worker told to stop finishes its jobs within the grace
period, so scale-in never cuts a job short.
*/}}
{{- define "taskq.worker.scaledObject" -}}
{{- if .Values.worker.keda.enabled -}}
{{- $keda := .Values.worker.keda -}}
{{- $lib := include "taskq.library" . | fromYaml -}}
{{- $scope := dict "component" "worker" "context" . -}}
{{- $fromRedis := eq $keda.source "redis" -}}
{{- if and $fromRedis (ne $lib.kedaReads "redis") -}}
{{- fail (printf "worker.keda.source redis: %s's queue is not a Redis list KEDA's redis trigger can read; use source exporter" $lib.name) -}}
{{- end -}}
{{- if and (not $fromRedis) (not .Values.exporter.enabled) -}}
{{- fail "worker.keda.source exporter needs exporter.enabled: KEDA reads the backlog from the exporter (or set source redis, where the library allows it)" -}}
{{- end -}}
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {{ include "taskq.componentName" $scope }}
  labels:
    {{- include "taskq.labels" $scope | nindent 4 }}
spec:
  scaleTargetRef:
    name: {{ include "taskq.componentName" $scope }}
  pollingInterval: {{ $keda.pollingInterval }}
  cooldownPeriod: {{ $keda.cooldownPeriod }}
  minReplicaCount: {{ $keda.minReplicas }}
  maxReplicaCount: {{ $keda.maxReplicas }}
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown:
          # Queue depth swings from job to job; scale in only after it has stayed low this long,
          # and by one pod at a time.
          stabilizationWindowSeconds: {{ $keda.scaleDownStabilizationSeconds }}
          policies:
            - {type: Pods, value: 1, periodSeconds: 60}
  triggers:
    {{- if $fromRedis }}
    # One trigger per queue the workers consume; KEDA scales to the busiest.
    {{- $triggers := list }}
    {{- range $queue := $keda.queues }}
    {{- $trigger := include "taskq.library.kedaTrigger" (dict "context" $ "queue" $queue) | fromYaml }}
    {{- $_ := set $trigger "authenticationRef" (dict "name" (include "taskq.componentName" $scope)) }}
    {{- $triggers = append $triggers $trigger }}
    {{- end }}
    {{- toYaml $triggers | nindent 4 }}
    {{- else }}
    # The backlog of the queues the workers consume, summed (an unknown queue name is refused).
    - type: metrics-api
      metadata:
        url: {{ printf "http://%s.%s.svc:9808/backlog?queues=%s" (include "taskq.componentName" (dict "component" "exporter" "context" .)) .Release.Namespace (join "," $keda.queues) | quote }}
        valueLocation: backlog
        targetValue: {{ $keda.jobsPerWorker | quote }}
        activationTargetValue: "0"
    {{- end }}
{{- if $fromRedis }}
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: {{ include "taskq.componentName" $scope }}
  labels:
    {{- include "taskq.labels" $scope | nindent 4 }}
spec:
  secretTargetRef:
    {{- include "taskq.library.kedaSecretTargets" . | nindent 4 }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* The KEDA redis trigger's connection: the chart's Redis, or the external one's Secret. */}}
{{- define "taskq.kedaRedisMetadata" -}}
{{- if .Values.redis.enabled -}}
address: {{ printf "%s.%s.svc:6379" (include "taskq.componentName" (dict "component" "redis" "context" .)) .Release.Namespace }}
{{- else -}}
enableTLS: {{ .Values.externalRedis.tls | quote }}
{{- end }}
databaseIndex: "0"
{{- end -}}

{{- define "taskq.kedaRedisSecretTargets" -}}
{{- if .Values.redis.enabled -}}
- {parameter: password, name: {{ include "taskq.redisSecretName" . }}, key: redis-password}
{{- else -}}
- {parameter: address, name: {{ include "taskq.redisSecretName" . }}, key: {{ .Values.externalRedis.addressKey }}}
- {parameter: password, name: {{ include "taskq.redisSecretName" . }}, key: {{ .Values.externalRedis.passwordKey }}}
{{- end -}}
{{- end -}}

{{- define "taskq.worker.hpa" -}}
{{- if .Values.worker.hpa.enabled -}}
{{- $hpa := .Values.worker.hpa -}}
{{- if not (dig "requests" "cpu" "" .Values.worker.resources) -}}
{{- fail "worker.hpa.enabled needs worker.resources.requests.cpu: CPU utilisation is measured against the request" -}}
{{- end -}}
{{- $scope := dict "component" "worker" "context" . -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "taskq.componentName" $scope }}
  labels:
    {{- include "taskq.labels" $scope | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "taskq.componentName" $scope }}
  minReplicas: {{ $hpa.minReplicas }}
  maxReplicas: {{ $hpa.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target: {type: Utilization, averageUtilization: {{ $hpa.targetCPUUtilizationPercentage }}}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: {{ $hpa.scaleDownStabilizationSeconds }}
      policies:
        - {type: Pods, value: 1, periodSeconds: 60}
{{- end -}}
{{- end -}}

{{/* A headless Service for the worker pods' Prometheus exporter, when the library has one. */}}
{{- define "taskq.worker.metricsService" -}}
{{- $lib := include "taskq.library" . | fromYaml -}}
{{- if and $lib.workerMetricsPort .Values.metrics.serviceMonitor.enabled -}}
{{- $scope := dict "component" "worker" "context" . -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ printf "%s-metrics" (include "taskq.componentName" $scope) }}
  labels:
    {{- include "taskq.labels" $scope | nindent 4 }}
spec:
  type: ClusterIP
  clusterIP: None
  ports:
    - {name: metrics, port: {{ $lib.workerMetricsPort }}, targetPort: metrics, protocol: TCP}
  selector:
    {{- include "taskq.selectorLabels" $scope | nindent 4 }}
{{- end -}}
{{- end -}}
