{{/*
Chart name, truncated to the 63 characters a label value allows.
*/}}
{{- define "la-stack.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Release-scoped name for the objects the umbrella itself owns.
*/}}
{{- define "la-stack.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "la-stack.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object the umbrella renders itself.
*/}}
{{- define "la-stack.labels" -}}
helm.sh/chart: {{ include "la-stack.chart" . }}
{{ include "la-stack.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: la-stack
{{- end }}

{{- define "la-stack.selectorLabels" -}}
app.kubernetes.io/name: {{ include "la-stack.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ECK API must be served before an Elasticsearch resource can be applied.
*/}}
{{- define "la-stack.preflight" -}}
{{- $es := index .Values "eck-elasticsearch" }}
{{- if and $es.enabled .Values.preflight.requireEckApi (not (.Capabilities.APIVersions.Has "elasticsearch.k8s.elastic.co/v1")) }}
{{- fail "The ECK operator is missing: this cluster does not serve elasticsearch.k8s.elastic.co/v1, so install the operator first (helm install elastic-operator eck-operator --repo https://helm.elastic.co --version 3.5.0 -n elastic-system --create-namespace), or pass --api-versions elasticsearch.k8s.elastic.co/v1 when rendering offline." }}
{{- end }}
{{- end }}
