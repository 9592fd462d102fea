{{- define "taskq.monitor.deployment" -}}
{{- if .Values.monitor.enabled -}}
{{- $container := include "taskq.monitor.container" . -}}
{{- include "taskq.recipeDeployment" (dict "component" "monitor" "context" . "replicas" 1 "container" $container) -}}
{{- end -}}
{{- end -}}

{{- define "taskq.monitor.container" -}}
{{- $lib := include "taskq.library" . | fromYaml -}}
ports:
  - {name: http, containerPort: {{ $lib.monitorPort }}, protocol: TCP}
# A TCP check: every page asks for credentials, and a probe must not carry them.
readinessProbe:
  tcpSocket: {port: http}
  {{- toYaml .Values.monitor.readinessProbe | nindent 2 }}
livenessProbe:
  tcpSocket: {port: http}
  {{- toYaml .Values.monitor.livenessProbe | nindent 2 }}
{{- end -}}

{{/* The monitor's credentials come before its own env, which may refer to them as $(NAME). */}}
{{- define "taskq.monitor.credentialsEnv" -}}
- name: MONITOR_USER
  valueFrom:
    secretKeyRef: {name: {{ include "taskq.monitorSecretName" . }}, key: username}
- name: MONITOR_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "taskq.monitorSecretName" . }}, key: password}
{{- end -}}

{{- define "taskq.monitor.service" -}}
{{- if .Values.monitor.enabled -}}
{{- $lib := include "taskq.library" . | fromYaml -}}
{{- $scope := dict "component" "monitor" "context" . -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "taskq.componentName" $scope }}
  labels:
    {{- include "taskq.labels" $scope | nindent 4 }}
spec:
  type: ClusterIP
  ports:
    - {name: http, port: {{ $lib.monitorPort }}, targetPort: http, protocol: TCP}
  selector:
    {{- include "taskq.selectorLabels" $scope | nindent 4 }}
{{- end -}}
{{- end -}}

{{- define "taskq.monitor.secret" -}}
{{- if and .Values.monitor.enabled (not .Values.monitor.auth.existingSecret) -}}
{{- include "taskq.generatedSecret" (dict "name" (include "taskq.monitorSecretName" .) "generate" (list "password") "fixed" (dict "username" .Values.monitor.auth.username) "component" "monitor" "context" .) -}}
{{- end -}}
{{- end -}}

{{/* The demo's stand-in payment provider: what the `charge` job pays through (PSP_URL). */}}
{{- define "taskq.psp.deployment" -}}
{{- if .Values.psp.enabled -}}
{{- $container := include "taskq.psp.container" . -}}
{{- include "taskq.recipeDeployment" (dict "component" "psp" "context" . "replicas" 1 "container" $container) -}}
{{- end -}}
{{- end -}}

{{- define "taskq.psp.container" -}}
ports:
  - {name: http, containerPort: 8080, protocol: TCP}
readinessProbe:
  httpGet: {path: /healthz, port: http}
  {{- toYaml .Values.psp.readinessProbe | nindent 2 }}
livenessProbe:
  httpGet: {path: /healthz, port: http}
  {{- toYaml .Values.psp.livenessProbe | nindent 2 }}
{{- end -}}

{{- define "taskq.psp.service" -}}
{{- if .Values.psp.enabled -}}
{{- $scope := dict "component" "psp" "context" . -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "taskq.componentName" $scope }}
  labels:
    {{- include "taskq.labels" $scope | nindent 4 }}
spec:
  type: ClusterIP
  ports:
    - {name: http, port: 8080, targetPort: http, protocol: TCP}
  selector:
    {{- include "taskq.selectorLabels" $scope | nindent 4 }}
{{- end -}}
{{- end -}}
