{{/*
Prometheus Operator ServiceMonitors (off by default: they need the operator's CRDs): the
exporter's, for every library (the queue metrics the alerts read), and the library's own
endpoint where it has one (Flower's /metrics for Celery, the worker processes' exporter for
Dramatiq).
*/}}
{{- define "taskq.serviceMonitor" -}}
{{- if .Values.metrics.serviceMonitor.enabled -}}
{{- if not .Values.exporter.enabled -}}
{{- fail "metrics.serviceMonitor.enabled needs exporter.enabled: the queue metrics are the exporter's" -}}
{{- end -}}
{{- include "taskq.serviceMonitorFor" (dict "component" "exporter" "port" "metrics" "context" .) }}
{{- $lib := include "taskq.library" . | fromYaml -}}
{{- if and $lib.metricsComponent (or (ne $lib.metricsComponent "monitor") .Values.monitor.enabled) }}
---
{{ include "taskq.serviceMonitorFor" (dict "component" $lib.metricsComponent "port" $lib.metricsPortName "context" .) }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* (dict "component" "exporter" "port" "metrics" "context" $) */}}
{{- define "taskq.serviceMonitorFor" -}}
{{- $ := .context -}}
{{- $scope := dict "component" .component "context" $ -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "taskq.componentName" $scope }}
  labels:
    {{- include "taskq.labels" $scope | nindent 4 }}
    {{- with $.Values.metrics.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "taskq.selectorLabels" $scope | nindent 6 }}
  endpoints:
    - port: {{ .port }}
      path: /metrics
      interval: {{ $.Values.metrics.serviceMonitor.interval }}
      {{- if eq .component "monitor" }}
      # The monitor's /metrics asks for the credentials its pages ask for.
      basicAuth:
        username: {name: {{ include "taskq.monitorSecretName" $ }}, key: username}
        password: {name: {{ include "taskq.monitorSecretName" $ }}, key: password}
      {{- end }}
{{- end -}}

{{/*
`helm test <release>` tests what is deployed: tests.command when you give one (in the worker's
image, with the worker's environment); else, with the demo app on, a demo job posted through
the app until its effect is recorded (app, broker, worker and database together); else, that the
worker's image reaches the broker with the chart's settings.
*/}}
{{- define "taskq.testPod" -}}
{{- $scope := dict "component" "test" "context" . -}}
{{- $worker := .Values.worker -}}
{{- $inWorkerImage := or .Values.tests.command (not .Values.app.enabled) -}}
apiVersion: v1
kind: Pod
metadata:
  name: {{ include "taskq.componentName" $scope }}
  labels:
    {{- include "taskq.labels" $scope | nindent 4 }}
  annotations:
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- include "taskq.podSecurityContext" (dict "uid" 10001) | nindent 4 }}
  containers:
    {{- if $inWorkerImage }}
    - name: {{ ternary "test" "broker-answers" (not (empty .Values.tests.command)) }}
      image: {{ include "taskq.componentImage" (dict "values" $worker "key" "worker" "context" .) }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command:
        {{- if .Values.tests.command }}
        {{- toYaml .Values.tests.command | nindent 8 }}
        {{- else }}
        - python
        - -c
        - |
          import redis
          from taskq.settings import Settings
          url = Settings.from_env().require_redis_url()
          print("broker answers:", redis.Redis.from_url(url, socket_timeout=10).ping())
        {{- end }}
      {{- include "taskq.recipeEnv" (dict "values" $worker "context" .) | nindent 6 }}
      {{- include "taskq.volumeMounts" $worker | nindent 6 }}
    {{- else }}
    - name: post-job-and-wait-for-effect
      image: {{ include "taskq.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command:
        - python
        - -c
        - |
          import json, sys, time, urllib.request
          base = "http://{{ include "taskq.componentName" (dict "component" "app" "context" .) }}:{{ .Values.app.service.port }}"
          key = f"helm-test-{time.time_ns()}"
          body = json.dumps({"task": "demo", "key": key, "sleep_s": 0.1}).encode()
          request = urllib.request.Request(f"{base}/jobs", body, {"Content-Type": "application/json"})
          print("enqueued", json.load(urllib.request.urlopen(request, timeout=10)))
          deadline = time.monotonic() + {{ .Values.tests.timeoutSeconds }}
          while time.monotonic() < deadline:
              effect = json.load(urllib.request.urlopen(f"{base}/effects/{key}", timeout=10))
              if effect["effects"] == 1:
                  sys.exit(print("effect recorded", effect))
              time.sleep(1)
          sys.exit(f"no effect for {key} within {{ .Values.tests.timeoutSeconds }} s: is a worker running?")
      volumeMounts:
        - {name: tmp, mountPath: /tmp}
    {{- end }}
      securityContext:
        {{- include "taskq.containerSecurityContext" . | nindent 8 }}
      resources:
        requests: {cpu: 10m, memory: 32Mi}
        limits: {memory: 128Mi}
  volumes:
    - name: tmp
      emptyDir: {medium: Memory, sizeLimit: 64Mi}
    {{- with and $inWorkerImage $worker.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{- define "taskq.notes" -}}
{{- $lib := include "taskq.library" . | fromYaml -}}
{{- $app := include "taskq.componentName" (dict "component" "app" "context" .) -}}
{{- $monitor := include "taskq.componentName" (dict "component" "monitor" "context" .) -}}
The {{ $lib.name }} stack is installing in namespace {{ .Release.Namespace }}. Every Service is
ClusterIP: reach them through a port-forward (or an Ingress of your own).

{{- if .Values.app.enabled }}
The app (POST /jobs, GET /effects/KEY, /healthz, /readyz):
  kubectl --namespace {{ .Release.Namespace }} port-forward service/{{ $app }} 8000:{{ .Values.app.service.port }}
  curl -X POST localhost:8000/jobs -H 'Content-Type: application/json' -d '{"task": "demo", "key": "k1"}'
{{- else }}
No demo app (app.enabled=false): your own app enqueues the jobs.
{{- end }}
{{- if .Values.monitor.enabled }}

The monitor ({{ $lib.monitorName }}), behind credentials:
  kubectl --namespace {{ .Release.Namespace }} port-forward service/{{ $monitor }} {{ $lib.monitorPort }}:{{ $lib.monitorPort }}
  open http://localhost:{{ $lib.monitorPort }}/ as user
    kubectl --namespace {{ .Release.Namespace }} get secret {{ include "taskq.monitorSecretName" . }} -o jsonpath='{.data.username}' | base64 -d
  with password
    kubectl --namespace {{ .Release.Namespace }} get secret {{ include "taskq.monitorSecretName" . }} -o jsonpath='{.data.password}' | base64 -d
{{- end }}

Check it end to end: helm test {{ .Release.Name }} --namespace {{ .Release.Namespace }}
Operate the queue: kubectl --namespace {{ .Release.Namespace }} exec deploy/{{ include "taskq.componentName" (dict "component" (ternary "app" "worker" .Values.app.enabled) "context" .) }} -- taskq depth
Worker stop grace period: {{ include "taskq.graceSeconds" . }} s, for jobs of up to {{ .Values.jobs.timeLimitSeconds }} s.
{{- end -}}
