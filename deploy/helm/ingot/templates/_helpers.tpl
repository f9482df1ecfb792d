{{/* Names and labels, following `helm create` conventions. */}}
{{- define "ingot.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ingot.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "ingot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ingot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ingot.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "ingot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "ingot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ingot.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ingot.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "ingot.claimName" -}}
{{- default (printf "%s-data" (include "ingot.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{- define "ingot.spoolClaimName" -}}
{{- default (printf "%s-spool" (include "ingot.fullname" .)) .Values.state.spool.existingClaim }}
{{- end }}

{{- define "ingot.lancedbClaimName" -}}
{{- default (printf "%s-lancedb" (include "ingot.fullname" .)) .Values.vectorStore.lancedb.volume.existingClaim }}
{{- end }}

{{/* The worker: its own name and selector (app.kubernetes.io/name <chart>-worker), so the
server's Service, Deployment and PodDisruptionBudget never select worker pods. */}}
{{- define "ingot.workerFullname" -}}
{{- printf "%s-worker" (include "ingot.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}

{{- define "ingot.workerSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-worker" (include "ingot.name" . | trunc 56 | trimSuffix "-") }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: worker
{{- end }}

{{- define "ingot.workerLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "ingot.workerSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* True when the server ingests in-process: always without workers, and with them only
when worker.serverIngests says so. */}}
{{- define "ingot.serverIngests" -}}
{{- if or (not .Values.worker.enabled) .Values.worker.serverIngests -}}
true
{{- end }}
{{- end }}

{{/* A ReadWriteOnce volume cannot follow a pod to another node during a rolling update. */}}
{{- define "ingot.strategy" -}}
{{- if and .Values.persistence.enabled (has "ReadWriteOnce" .Values.persistence.accessModes) -}}
Recreate
{{- else -}}
RollingUpdate
{{- end }}
{{- end }}

{{/* Settings shared by the server and the pull init container (same cache, same catalog). */}}
{{- define "ingot.env" -}}
- name: INGOT_DATA_DIR
  value: {{ .Values.persistence.mountPath | quote }}
- name: HOME
  value: {{ .Values.persistence.mountPath | quote }}
- name: INGOT_CONFIG
  value: /etc/ingot/config.yaml
- name: INGOT_MODEL
  value: {{ .Values.model.name | quote }}
- name: INGOT_MODEL_PROFILE
  value: {{ .Values.model.profile | quote }}
- name: INGOT_MODEL_PRECISION
  value: {{ .Values.model.precision | quote }}
- name: INGOT_EMBEDDING_MODEL
  value: {{ .Values.model.embedding | quote }}
- name: INGOT_RANKING_MODEL
  value: {{ .Values.model.ranking | quote }}
- name: INGOT_VECTOR_STORE
  value: {{ .Values.vectorStore.backend | quote }}
{{- if eq .Values.vectorStore.backend "milvus" }}
- name: INGOT_MILVUS_URI
  value: {{ required "vectorStore.milvus.uri is required when vectorStore.backend is milvus" .Values.vectorStore.milvus.uri | quote }}
{{- with .Values.vectorStore.milvus.tokenSecret }}
{{- if .name }}
- name: INGOT_MILVUS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .key }}
{{- end }}
{{- end }}
{{- end }}
{{- if .Values.vectorStore.lancedb.volume.enabled }}
- name: INGOT_LANCEDB_URI
  value: {{ .Values.vectorStore.lancedb.volume.mountPath | quote }}
{{- end }}
{{- with .Values.state.database.urlSecret }}
{{- if .name }}
- name: INGOT_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .key }}
{{- end }}
{{- end }}
{{- with .Values.state.redis.urlSecret }}
{{- if .name }}
- name: INGOT_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .key }}
{{- end }}
{{- end }}
{{- if .Values.state.spool.enabled }}
- name: INGOT_SPOOL_DIR
  value: {{ .Values.state.spool.mountPath | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Volumes every ingot container mounts (server, worker, pull init container): the data
volume (model cache), the settings file, /tmp, and the shared spool and LanceDB volumes. */}}
{{- define "ingot.volumeMounts" -}}
- name: data
  mountPath: {{ .Values.persistence.mountPath }}
- name: config
  mountPath: /etc/ingot
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if .Values.state.spool.enabled }}
- name: spool
  mountPath: {{ .Values.state.spool.mountPath }}
{{- end }}
{{- if .Values.vectorStore.lancedb.volume.enabled }}
- name: lancedb
  mountPath: {{ .Values.vectorStore.lancedb.volume.mountPath }}
{{- end }}
{{- end }}

{{- define "ingot.volumes" -}}
- name: data
  {{- if .Values.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ include "ingot.claimName" . }}
  {{- else }}
  emptyDir: {}
  {{- end }}
- name: config
  configMap:
    name: {{ include "ingot.fullname" . }}
- name: tmp
  emptyDir: {}
{{- if .Values.state.spool.enabled }}
- name: spool
  persistentVolumeClaim:
    claimName: {{ include "ingot.spoolClaimName" . }}
{{- end }}
{{- if .Values.vectorStore.lancedb.volume.enabled }}
- name: lancedb
  persistentVolumeClaim:
    claimName: {{ include "ingot.lancedbClaimName" . }}
{{- end }}
{{- end }}

{{/* Fills the model cache on the volume before ingot starts (server and worker alike); a
pull that is already there is re-verified (sha256), not downloaded again. */}}
{{- define "ingot.pullInitContainer" -}}
- name: pull-models
  image: {{ include "ingot.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: ["/bin/sh", "-c"]
  args:
    - |
      set -e
      {{- range .Values.model.pull }}
      ingot models pull {{ . | quote }}
      {{- end }}
      ingot models verify
  env:
    {{- include "ingot.env" . | nindent 4 }}
    - name: HF_HUB_OFFLINE
      value: {{ ternary "0" "1" .Values.model.allowHubDownloads | quote }}
    {{- with .Values.model.hubTokenSecret }}
    {{- if .name }}
    - name: HF_TOKEN
      valueFrom:
        secretKeyRef:
          name: {{ .name }}
          key: {{ .key }}
    {{- end }}
    {{- end }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    {{- include "ingot.volumeMounts" . | nindent 4 }}
{{- end }}

{{/* Probes on the health routes, the same paths on the server (port 8000) and the worker
(8001): live answers while models load; ready is 503 until they serve. */}}
{{- define "ingot.probes" -}}
startupProbe:
  httpGet:
    path: /v1/health/ready
    port: http
  periodSeconds: {{ .Values.probes.startup.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.startup.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.startup.failureThreshold }}
readinessProbe:
  httpGet:
    path: /v1/health/ready
    port: http
  periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
livenessProbe:
  httpGet:
    path: /v1/health/live
    port: http
  periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
{{- end }}
