{{/*
The Deployment every recipe component (app, worker, scheduler, monitor) runs in: the recipe
image (or the component's own), hardened, settings from the ConfigMap, secrets by reference,
/tmp on an emptyDir (the root filesystem is read-only; heartbeat files live in /tmp), and the
component's own env, envFrom and volumes.

(dict "component" "worker" "context" $ "replicas" 2 (or nil: an autoscaler owns it)
      "strategy" (dict …) "grace" 330 "migrate" true "container" "<ports, probes: YAML>")
*/}}
{{- define "taskq.recipeDeployment" -}}
{{- $ := .context -}}
{{- $values := index $.Values .component -}}
{{- $scope := dict "component" .component "context" $ -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "taskq.componentName" $scope }}
  labels:
    {{- include "taskq.labels" $scope | nindent 4 }}
spec:
  {{- if not (kindIs "invalid" .replicas) }}
  replicas: {{ .replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  {{- with .strategy }}
  strategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "taskq.selectorLabels" $scope | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "taskq.labels" $scope | nindent 8 }}
      annotations:
        {{- include "taskq.checksumAnnotations" $ | nindent 8 }}
        {{- with $values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      automountServiceAccountToken: false
      {{- with $.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .grace }}
      terminationGracePeriodSeconds: {{ . }}
      {{- end }}
      securityContext:
        {{- include "taskq.podSecurityContext" (dict "uid" 10001) | nindent 8 }}
      {{- if and .migrate $.Values.migrate.enabled }}
      initContainers:
        # The schema migration (migrate.command) before the process starts; idempotent, serialised by
        # an advisory lock, so every pod may run it. It runs the app's code with the component's
        # environment and volumes.
        - name: migrate
          image: {{ include "taskq.componentImage" (dict "values" $.Values.migrate "key" "migrate" "context" $) }}
          imagePullPolicy: {{ $.Values.image.pullPolicy }}
          command: {{- toYaml $.Values.migrate.command | nindent 12 }}
          {{- include "taskq.recipeEnv" (dict "values" $values "context" $) | nindent 10 }}
          securityContext:
            {{- include "taskq.containerSecurityContext" . | nindent 12 }}
          resources:
            {{- toYaml $values.resources | nindent 12 }}
          {{- include "taskq.volumeMounts" $values | nindent 10 }}
      {{- end }}
      containers:
        - name: {{ .component }}
          image: {{ include "taskq.componentImage" (dict "values" $values "key" .component "context" $) }}
          imagePullPolicy: {{ $.Values.image.pullPolicy }}
          command:
            {{- include "taskq.execCommand" (dict "command" $values.command "component" .component) | nindent 12 }}
          {{- include "taskq.recipeEnv" (dict "values" $values "credentials" (eq .component "monitor") "context" $) | nindent 10 }}
          {{- .container | trim | nindent 10 }}
          securityContext:
            {{- include "taskq.containerSecurityContext" . | nindent 12 }}
          resources:
            {{- toYaml $values.resources | nindent 12 }}
          {{- include "taskq.volumeMounts" $values | nindent 10 }}
      volumes:
        - name: tmp
          emptyDir: {medium: Memory, sizeLimit: 64Mi}
        {{- with $values.extraVolumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- include "taskq.podPlacement" $values | nindent 6 }}
{{- end -}}

{{/* The chart's settings and secrets, then the component's own (envFrom entries later in the
list win; env wins over envFrom). (dict "values" $values "credentials" bool "context" $) */}}
{{- define "taskq.recipeEnv" -}}
envFrom:
  - configMapRef:
      name: {{ include "taskq.componentName" (dict "component" "config" "context" .context) }}
  {{- with .values.envFrom }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
env:
  {{- include "taskq.secretEnv" .context | trim | nindent 2 }}
  {{- if .credentials }}
  {{- include "taskq.monitor.credentialsEnv" .context | nindent 2 }}
  {{- end }}
  {{- with include "taskq.extraEnv" .values.env | trim }}
  {{- . | nindent 2 }}
  {{- end }}
{{- end -}}

{{- define "taskq.volumeMounts" -}}
volumeMounts:
  - {name: tmp, mountPath: /tmp}
  {{- with .extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{- define "taskq.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "taskq.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{- define "taskq.podPlacement" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
A probe that reads a heartbeat file the process touches every few seconds from its main loop,
also while it runs a job: no broker round-trip, no process started beyond sh and find.
(dict "file" "/tmp/worker-heartbeat" "maxAge" 30 "probe" $values.livenessProbe)
*/}}
{{- define "taskq.heartbeatProbe" -}}
exec:
  command:
    - sh
    - -c
    - test -n "$(find {{ .file }} -newermt '{{ .maxAge }} seconds ago' 2>/dev/null)"
{{ toYaml .probe }}
{{- end -}}

{{- define "taskq.podDisruptionBudget" -}}
{{- $ := .context -}}
{{- $scope := dict "component" .component "context" $ -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "taskq.componentName" $scope }}
  labels:
    {{- include "taskq.labels" $scope | nindent 4 }}
spec:
  maxUnavailable: {{ (index $.Values .component).podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "taskq.selectorLabels" $scope | nindent 6 }}
{{- end -}}
