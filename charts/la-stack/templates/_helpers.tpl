{{- /* Names, labels and images shared by every slice; each component's own names and
preflight checks are in templates/<component>/_<component>.tpl. */ -}}
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

{{/*
`<fullname>-<suffix>`, the fullname cut so that the whole stays within 63 characters (a Job's
or Service's limit) and the suffix, which tells the objects apart, survives.
Usage: include "la-stack.nameOf" (list . "secrets")
*/}}
{{- define "la-stack.nameOf" -}}
{{- $suffix := index . 1 }}
{{- $base := include "la-stack.fullname" (index . 0) | trunc (int (sub 62 (len $suffix))) | trimSuffix "-" }}
{{- printf "%s-%s" $base $suffix }}
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
The Secret actually holding a credential: the user's existing one, else the generated one.
Usage: include "la-stack.credentialSecret" .Values.elasticsearch.users.writer
*/}}
{{- define "la-stack.credentialSecret" -}}
{{- default .secretName .existingSecret }}
{{- end }}

{{/*
Image reference of the hook and test Pods.
*/}}
{{- define "la-stack.hooks.image" -}}
{{- $img := .Values.hooks.image }}
{{- $registry := default $img.registry .Values.global.imageRegistry }}
{{- $name := printf "%s:%s" $img.repository (include "la-stack.imageTag" $img) }}
{{- if $registry }}
{{- printf "%s/%s" $registry $name }}
{{- else }}
{{- $name }}
{{- end }}
{{- end }}

{{/*
An image's tag with its digest when one is set (`5.0.1@sha256:…`): pulled by digest.
*/}}
{{- define "la-stack.imageTag" -}}
{{- .tag }}{{ with .digest }}@{{ . }}{{ end }}
{{- end }}
