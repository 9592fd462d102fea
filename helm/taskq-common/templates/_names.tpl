{{/*
Names, labels and the library's own facts. Every template takes the root context; the few that
need a component take (dict "component" "worker" "context" $), as Bitnami's common chart does.
*/}}

{{- define "taskq.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "taskq.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's object name, e.g. "demo-celery-worker". */}}
{{- define "taskq.componentName" -}}
{{- printf "%s-%s" (include "taskq.fullname" .context | trunc 50 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "taskq.selectorLabels" -}}
app.kubernetes.io/name: {{ include "taskq.name" .context }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "taskq.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .context.Chart.Name .context.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "taskq.selectorLabels" . }}
app.kubernetes.io/version: {{ .context.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .context.Release.Service }}
app.kubernetes.io/part-of: taskq
{{- end -}}

{{/*
The job library's facts come from the chart's own templates/_library.tpl ("taskq.library",
read with fromYaml): what differs between Celery, RQ, Dramatiq and Arq beyond values a user
chooses.
*/}}

{{- define "taskq.image" -}}
{{- include "taskq.pinnedImage" (dict "repository" .Values.image.repository "tag" (.Values.image.tag | default .Chart.AppVersion) "key" "image.tag") -}}
{{- end -}}

{{/* A component's own image (your app's, when it is not one image for all), else the chart's.
(dict "values" $.Values.worker "key" "worker" "context" $) */}}
{{- define "taskq.componentImage" -}}
{{- $own := .values.image | default dict -}}
{{- if $own.repository -}}
{{- include "taskq.pinnedImage" (dict "repository" $own.repository "tag" $own.tag "key" (printf "%s.image.tag" .key)) -}}
{{- else -}}
{{- include "taskq.image" .context -}}
{{- end -}}
{{- end -}}

{{/* (dict "repository" … "tag" … "key" "redis.image.tag") */}}
{{- define "taskq.pinnedImage" -}}
{{- $tag := .tag | toString -}}
{{- if or (eq $tag "latest") (eq $tag "") -}}
{{- fail (printf "%s=%q: pin a version (\"latest\" moves under a running release, and a rollback would not roll it back)" .key $tag) -}}
{{- end -}}
{{- printf "%s:%s" .repository $tag -}}
{{- end -}}

{{/* A shell as PID 1 swallows SIGTERM or passes it to the whole process group. */}}
{{- define "taskq.execCommand" -}}
{{- if has (first .command) (list "sh" "bash" "/bin/sh" "/bin/bash" "ash" "dash") -}}
{{- fail (printf "%s.command starts with %q: give the process itself in exec form (a list), so it is PID 1 and receives SIGTERM; a shell would swallow the signal or pass it to the whole process group" .component (first .command)) -}}
{{- end -}}
{{- toYaml .command -}}
{{- end -}}
