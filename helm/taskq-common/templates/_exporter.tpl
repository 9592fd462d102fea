{{/*
The exporter (`taskq exporter`): the queues' metrics, the same for every library, read from Redis
on each scrape with cheap commands only. One replica is enough (it holds no state; a scrape that
fails is a scrape Prometheus retries); its pod carries the release's labels, so the datastore
NetworkPolicy lets it reach Redis.
*/}}
{{- define "taskq.exporter.deployment" -}}
{{- if .Values.exporter.enabled -}}
{{- $container := include "taskq.exporter.container" . -}}
{{- include "taskq.recipeDeployment" (dict "component" "exporter" "context" . "replicas" 1 "container" $container) -}}
{{- end -}}
{{- end -}}

{{- define "taskq.exporter.container" -}}
ports:
  - {name: metrics, containerPort: 9808, protocol: TCP}
readinessProbe:
  httpGet: {path: /healthz, port: metrics}
  {{- toYaml .Values.exporter.readinessProbe | nindent 2 }}
livenessProbe:
  httpGet: {path: /healthz, port: metrics}
  {{- toYaml .Values.exporter.livenessProbe | nindent 2 }}
{{- end -}}

{{- define "taskq.exporter.service" -}}
{{- if .Values.exporter.enabled -}}
{{- $scope := dict "component" "exporter" "context" . -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "taskq.componentName" $scope }}
  labels:
    {{- include "taskq.labels" $scope | nindent 4 }}
spec:
  type: ClusterIP
  ports:
    - {name: metrics, port: 9808, targetPort: metrics, protocol: TCP}
  selector:
    {{- include "taskq.selectorLabels" $scope | nindent 4 }}
{{- end -}}
{{- end -}}

{{/*
The alert rules of recipes/monitoring/alerts.yaml (promtool-tested there) as a Prometheus
Operator PrometheusRule. kube-prometheus-stack selects rules by its release's label: give it in
metrics.prometheusRule.labels. runbookUrlBase, when set, replaces the rules' repository-relative
runbook links (recipes/monitoring/README.md#alertname) with links under it.
*/}}
{{- define "taskq.prometheusRule" -}}
{{- if .Values.metrics.prometheusRule.enabled -}}
{{- if not .Values.exporter.enabled -}}
{{- fail "metrics.prometheusRule.enabled needs exporter.enabled: the alerts read the exporter's metrics" -}}
{{- end -}}
{{- $scope := dict "component" "exporter" "context" . -}}
{{- $rules := include "taskq.alertRules" . | fromYaml -}}
{{- range $group := $rules.groups -}}
{{- range $rule := $group.rules -}}
{{- range $key, $value := $.Values.metrics.prometheusRule.thresholds -}}
{{- $_ := set $rule "expr" (replace (printf "${%s}" $key) (toString $value) $rule.expr) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- with .Values.metrics.prometheusRule.runbookUrlBase -}}
{{- $base := trimSuffix "/" . -}}
{{- range $group := $rules.groups -}}
{{- range $rule := $group.rules -}}
{{- $anchor := splitList "#" $rule.annotations.runbook_url | last -}}
{{- $_ := set $rule.annotations "runbook_url" (printf "%s#%s" $base $anchor) -}}
{{- end -}}
{{- end -}}
{{- end -}}
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: {{ include "taskq.componentName" $scope }}
  labels:
    {{- include "taskq.labels" $scope | nindent 4 }}
    {{- with .Values.metrics.prometheusRule.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- toYaml $rules | nindent 2 }}
{{- end -}}
{{- end -}}

{{/*
The Grafana dashboard of recipes/monitoring/grafana-dashboard.json (one for every library) in a
ConfigMap that Grafana's dashboard sidecar (kube-prometheus-stack's) picks up by its label.
*/}}
{{- define "taskq.grafanaDashboard.configMap" -}}
{{- if .Values.metrics.grafanaDashboard.enabled -}}
{{- if not .Values.exporter.enabled -}}
{{- fail "metrics.grafanaDashboard.enabled needs exporter.enabled: the dashboard shows the exporter's metrics" -}}
{{- end -}}
{{- $scope := dict "component" "exporter" "context" . -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ printf "%s-dashboard" (include "taskq.componentName" $scope) }}
  labels:
    {{- include "taskq.labels" $scope | nindent 4 }}
    {{- with .Values.metrics.grafanaDashboard.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
data:
  taskq-queues.json: |-
    {{- include "taskq.grafanaDashboard" . | nindent 4 }}
{{- end -}}
{{- end -}}
