{{/*
The chart's own Redis and Postgres, for development and small installs: one pod each, data on a
PersistentVolumeClaim, passwords in generated Secrets, reachable only from this release's pods.
Production usually points at managed ones instead (redis.enabled=false, externalRedis.*).
*/}}

{{- define "taskq.redis.statefulSet" -}}
{{- if .Values.redis.enabled -}}
{{- $scope := dict "component" "redis" "context" . -}}
{{- $redis := .Values.redis -}}
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ include "taskq.componentName" $scope }}
  labels:
    {{- include "taskq.labels" $scope | nindent 4 }}
spec:
  serviceName: {{ include "taskq.componentName" $scope }}
  replicas: 1
  selector:
    matchLabels:
      {{- include "taskq.selectorLabels" $scope | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "taskq.labels" $scope | nindent 8 }}
    spec:
      automountServiceAccountToken: false
      securityContext:
        {{- include "taskq.podSecurityContext" (dict "uid" 999) | nindent 8 }}
      containers:
        - name: redis
          image: {{ include "taskq.pinnedImage" (dict "repository" $redis.image.repository "tag" $redis.image.tag "key" "redis.image.tag") }}
          imagePullPolicy: IfNotPresent
          command: [redis-server]
          # The append-only file, synced every second, keeps queued jobs across a restart;
          # noeviction: a broker that evicts keys under memory pressure silently drops jobs.
          args:
            - --requirepass
            - $(REDIS_PASSWORD)
            - --appendonly
            - "yes"
            - --appendfsync
            - everysec
            - --maxmemory-policy
            - noeviction
            - --dir
            - /data
          env:
            - name: REDIS_PASSWORD
              valueFrom:
                secretKeyRef: {name: {{ include "taskq.redisSecretName" . }}, key: redis-password}
            - name: REDISCLI_AUTH
              valueFrom:
                secretKeyRef: {name: {{ include "taskq.redisSecretName" . }}, key: redis-password}
          ports:
            - {name: redis, containerPort: 6379, protocol: TCP}
          readinessProbe:
            exec: {command: [redis-cli, ping]}
            periodSeconds: 5
            timeoutSeconds: 3
          livenessProbe:
            exec: {command: [redis-cli, ping]}
            periodSeconds: 15
            timeoutSeconds: 5
            failureThreshold: 4
          securityContext:
            {{- include "taskq.containerSecurityContext" . | nindent 12 }}
          resources:
            {{- toYaml $redis.resources | nindent 12 }}
          volumeMounts:
            - {name: data, mountPath: /data}
            - {name: tmp, mountPath: /tmp}
      volumes:
        - name: tmp
          emptyDir: {}
        {{- if not $redis.persistence.enabled }}
        - name: data
          emptyDir: {}
        {{- end }}
  {{- if $redis.persistence.enabled }}
  volumeClaimTemplates:
    - {{- include "taskq.volumeClaimTemplate" $redis.persistence | nindent 6 }}
  {{- end }}
{{- end -}}
{{- end -}}

{{- define "taskq.postgres.statefulSet" -}}
{{- if .Values.postgres.enabled -}}
{{- $scope := dict "component" "postgres" "context" . -}}
{{- $postgres := .Values.postgres -}}
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ include "taskq.componentName" $scope }}
  labels:
    {{- include "taskq.labels" $scope | nindent 4 }}
spec:
  serviceName: {{ include "taskq.componentName" $scope }}
  replicas: 1
  selector:
    matchLabels:
      {{- include "taskq.selectorLabels" $scope | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "taskq.labels" $scope | nindent 8 }}
    spec:
      automountServiceAccountToken: false
      securityContext:
        {{- include "taskq.podSecurityContext" (dict "uid" 999) | nindent 8 }}
      containers:
        - name: postgres
          image: {{ include "taskq.pinnedImage" (dict "repository" $postgres.image.repository "tag" $postgres.image.tag "key" "postgres.image.tag") }}
          imagePullPolicy: IfNotPresent
          env:
            - {name: POSTGRES_USER, value: taskq}
            - {name: POSTGRES_DB, value: taskq}
            - name: POSTGRES_PASSWORD
              valueFrom:
                secretKeyRef: {name: {{ include "taskq.postgresSecretName" . }}, key: postgres-password}
            # A subdirectory: initdb refuses a volume's root, which may hold lost+found.
            - {name: PGDATA, value: /var/lib/postgresql/data/pgdata}
          ports:
            - {name: postgres, containerPort: 5432, protocol: TCP}
          readinessProbe:
            exec: {command: [pg_isready, --host=127.0.0.1, --username=taskq, --dbname=taskq]}
            periodSeconds: 5
            timeoutSeconds: 3
          livenessProbe:
            exec: {command: [pg_isready, --host=127.0.0.1, --username=taskq, --dbname=taskq]}
            periodSeconds: 15
            timeoutSeconds: 5
            failureThreshold: 4
          securityContext:
            {{- include "taskq.containerSecurityContext" . | nindent 12 }}
          resources:
            {{- toYaml $postgres.resources | nindent 12 }}
          volumeMounts:
            - {name: data, mountPath: /var/lib/postgresql/data}
            - {name: run, mountPath: /var/run/postgresql}
            - {name: tmp, mountPath: /tmp}
      volumes:
        - name: run
          emptyDir: {}
        - name: tmp
          emptyDir: {}
        {{- if not $postgres.persistence.enabled }}
        - name: data
          emptyDir: {}
        {{- end }}
  {{- if $postgres.persistence.enabled }}
  volumeClaimTemplates:
    - {{- include "taskq.volumeClaimTemplate" $postgres.persistence | nindent 6 }}
  {{- end }}
{{- end -}}
{{- end -}}

{{- define "taskq.volumeClaimTemplate" -}}
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  {{- with .storageClass }}
  storageClassName: {{ . | quote }}
  {{- end }}
  resources:
    requests:
      storage: {{ .size }}
{{- end -}}

{{/* (dict "component" "redis" "port" 6379 "context" $) */}}
{{- define "taskq.datastoreService" -}}
{{- if (index .context.Values .component).enabled -}}
{{- $scope := dict "component" .component "context" .context -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "taskq.componentName" $scope }}
  labels:
    {{- include "taskq.labels" $scope | nindent 4 }}
spec:
  type: ClusterIP
  ports:
    - {name: {{ .component }}, port: {{ .port }}, targetPort: {{ .component }}, protocol: TCP}
  selector:
    {{- include "taskq.selectorLabels" $scope | nindent 4 }}
{{- end -}}
{{- end -}}

{{- define "taskq.datastoreSecret" -}}
{{- $values := index .context.Values .component -}}
{{- if and $values.enabled (not $values.auth.existingSecret) -}}
{{- $name := include "taskq.componentName" (dict "component" .component "context" .context) -}}
{{- include "taskq.generatedSecret" (dict "name" $name "generate" (list (printf "%s-password" .component)) "fixed" dict "component" .component "context" .context) -}}
{{- end -}}
{{- end -}}

{{/*
Only this release's pods reach its Redis and Postgres; with KEDA reading the queues in Redis
(worker.keda.source redis), its operator too. (dict "component" "redis" "port" 6379 "context" $)
*/}}
{{- define "taskq.datastoreNetworkPolicy" -}}
{{- $ := .context -}}
{{- if and (index $.Values .component).enabled $.Values.networkPolicy.enabled -}}
{{- $scope := dict "component" .component "context" $ -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "taskq.componentName" $scope }}
  labels:
    {{- include "taskq.labels" $scope | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "taskq.selectorLabels" $scope | nindent 6 }}
  policyTypes: [Ingress]
  ingress:
    - from:
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: {{ include "taskq.name" $ }}
              app.kubernetes.io/instance: {{ $.Release.Name }}
      ports:
        - {port: {{ .port }}, protocol: TCP}
    {{- if and (eq .component "redis") $.Values.worker.keda.enabled (eq $.Values.worker.keda.source "redis") }}
    - from:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {{ $.Values.networkPolicy.kedaOperator.namespace }}
          podSelector:
            matchLabels:
              {{- toYaml $.Values.networkPolicy.kedaOperator.podLabels | nindent 14 }}
      ports:
        - {port: {{ .port }}, protocol: TCP}
    {{- end }}
{{- end -}}
{{- end -}}
