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
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
