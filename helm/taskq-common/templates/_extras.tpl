{{/*
A Prometheus Operator ServiceMonitor for the library's metrics endpoint (off by default: it
needs the operator's CRDs). The endpoint is the library's: Flower's /metrics for Celery, the
worker's exporter for Dramatiq. RQ and Arq ship none, and the render says so.
*/}}
{{- define "taskq.serviceMonitor" -}}
{{- if .Values.metrics.serviceMonitor.enabled -}}
{{- $lib := include "taskq.library" . | fromYaml -}}
{{- if not $lib.metricsComponent -}}
{{- fail (printf "metrics.serviceMonitor.enabled: the %s recipe has no Prometheus endpoint to scrape (queue depth is at `taskq depth --json` and on the monitor)" $lib.name) -}}
{{- end -}}
{{- if and (eq $lib.metricsComponent "monitor") (not .Values.monitor.enabled) -}}
{{- fail "metrics.serviceMonitor.enabled needs monitor.enabled: the metrics are served by the monitor" -}}
{{- end -}}
{{- $scope := dict "component" $lib.metricsComponent "context" . -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "taskq.componentName" $scope }}
  labels:
    {{- include "taskq.labels" $scope | nindent 4 }}
    {{- with .Values.metrics.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "taskq.selectorLabels" $scope | nindent 6 }}
  endpoints:
    - port: {{ $lib.metricsPortName }}
      path: /metrics
      interval: {{ .Values.metrics.serviceMonitor.interval }}
{{- end -}}
{{- end -}}

{{/*
`helm test <release>`: posts a demo job through the app and waits until its effect is recorded,
which needs app, broker, worker and database to work together.
*/}}
{{- define "taskq.testPod" -}}
{{- $scope := dict "component" "test" "context" . -}}
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
  securityContext:
    {{- include "taskq.podSecurityContext" (dict "uid" 10001) | nindent 4 }}
  containers:
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
      securityContext:
        {{- include "taskq.containerSecurityContext" . | nindent 8 }}
      resources:
        requests: {cpu: 10m, memory: 32Mi}
        limits: {memory: 64Mi}
{{- end -}}

{{- define "taskq.notes" -}}
{{- $lib := include "taskq.library" . | fromYaml -}}
{{- $app := include "taskq.componentName" (dict "component" "app" "context" .) -}}
{{- $monitor := include "taskq.componentName" (dict "component" "monitor" "context" .) -}}
The {{ $lib.name }} stack is installing in namespace {{ .Release.Namespace }}. Every Service is
ClusterIP: reach them through a port-forward (or an Ingress of your own).

The app (POST /jobs, GET /effects/KEY, /healthz, /readyz):
  kubectl --namespace {{ .Release.Namespace }} port-forward service/{{ $app }} 8000:{{ .Values.app.service.port }}
  curl -X POST localhost:8000/jobs -H 'Content-Type: application/json' -d '{"task": "demo", "key": "k1"}'
{{- if .Values.monitor.enabled }}

The monitor ({{ $lib.monitorName }}), behind credentials:
  kubectl --namespace {{ .Release.Namespace }} port-forward service/{{ $monitor }} {{ $lib.monitorPort }}:{{ $lib.monitorPort }}
  open http://localhost:{{ $lib.monitorPort }}/ as user
    kubectl --namespace {{ .Release.Namespace }} get secret {{ include "taskq.monitorSecretName" . }} -o jsonpath='{.data.username}' | base64 -d
  with password
    kubectl --namespace {{ .Release.Namespace }} get secret {{ include "taskq.monitorSecretName" . }} -o jsonpath='{.data.password}' | base64 -d
{{- end }}

Check it end to end: helm test {{ .Release.Name }} --namespace {{ .Release.Namespace }}
Operate the queue: kubectl --namespace {{ .Release.Namespace }} exec deploy/{{ $app }} -- taskq depth
Worker stop grace period: {{ include "taskq.graceSeconds" . }} s, for jobs of up to {{ .Values.jobs.timeLimitSeconds }} s.
{{- end -}}
