{{- define "taskq.app.deployment" -}}
{{- if .Values.app.enabled -}}
{{- $container := include "taskq.app.container" . -}}
{{- $strategy := dict "type" "RollingUpdate" "rollingUpdate" (dict "maxSurge" 1 "maxUnavailable" 0) -}}
{{- /* preStopSleepSeconds, then the servers' own 30 s for requests in flight (gunicorn's graceful
timeout; uvicorn waits for them, and SIGKILL ends the wait). */ -}}
{{- $grace := add (int .Values.app.preStopSleepSeconds) 30 -}}
{{- include "taskq.recipeDeployment" (dict "component" "app" "context" . "replicas" .Values.app.replicas "strategy" $strategy "grace" $grace "migrate" true "container" $container) -}}
{{- end -}}
{{- end -}}

{{- define "taskq.app.container" -}}
ports:
  - {name: http, containerPort: 8000, protocol: TCP}
# Ready when Redis and Postgres answer: a pod that cannot enqueue gets no requests.
readinessProbe:
  httpGet: {path: /readyz, port: http}
  {{- toYaml .Values.app.readinessProbe | nindent 2 }}
# Alive while the process serves, whatever Redis and Postgres do: restarting the API would not
# bring them back.
livenessProbe:
  httpGet: {path: /healthz, port: http}
  {{- toYaml .Values.app.livenessProbe | nindent 2 }}
{{- with .Values.app.preStopSleepSeconds }}
# Serving on while the Service stops sending requests here: SIGTERM at once would close the port
# while kube-proxy still sent some to it (refused: the cluster test saw it after an upgrade).
# Kubernetes' own sleep, so the image needs no sleep binary.
lifecycle:
  preStop:
    sleep: {seconds: {{ . }}}
{{- end }}
{{- end -}}

{{- define "taskq.app.service" -}}
{{- if .Values.app.enabled -}}
{{- $scope := dict "component" "app" "context" . -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "taskq.componentName" $scope }}
  labels:
    {{- include "taskq.labels" $scope | nindent 4 }}
spec:
  type: ClusterIP
  ports:
    - {name: http, port: {{ .Values.app.service.port }}, targetPort: http, protocol: TCP}
  selector:
    {{- include "taskq.selectorLabels" $scope | nindent 4 }}
{{- end -}}
{{- end -}}

{{- define "taskq.app.podDisruptionBudget" -}}
{{- if and .Values.app.enabled .Values.app.podDisruptionBudget.enabled -}}
{{- include "taskq.podDisruptionBudget" (dict "component" "app" "context" .) -}}
{{- end -}}
{{- end -}}
