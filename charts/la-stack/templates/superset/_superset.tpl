{{/*
Name of the `Superset` resource; the operator derives every object's name from it.
*/}}
{{- define "la-stack.superset.name" -}}
{{- tpl .Values.superset.name . | trunc 40 | trimSuffix "-" }}
{{- end }}

{{/*
Superset's credentials Secret; a template, as the valkey chart also renders it.
*/}}
{{- define "la-stack.superset.credentialsSecret" -}}
{{- tpl .Values.supersetWiring.credentialsSecret . }}
{{- end }}

{{/*
The web server Service the operator creates (`<name>-web-server`, port 8088).
*/}}
{{- define "la-stack.superset.webService" -}}
{{- printf "%s-web-server" (include "la-stack.superset.name" .) }}
{{- end }}

{{- define "la-stack.superset.url" -}}
{{- printf "http://%s.%s.svc:8088" (include "la-stack.superset.webService" .) .Release.Namespace }}
{{- end }}

{{/*
The CloudNativePG Cluster of Superset's metastore, and the Secret CNPG generates for its
application user (keys username, password, host, port, dbname, uri, …).
*/}}
{{- define "la-stack.superset.metastoreName" -}}
{{- printf "%s-superset-db" .Release.Name | trunc 50 | trimSuffix "-" }}
{{- end }}

{{- define "la-stack.superset.metastoreSecret" -}}
{{- printf "%s-app" (include "la-stack.superset.metastoreName" .) }}
{{- end }}

{{/*
The valkey subchart's Service, named as that chart names it.
*/}}
{{- define "la-stack.valkey.fullname" -}}
{{- $v := .Values.valkey }}
{{- if $v.fullnameOverride }}
{{- $v.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default "valkey" $v.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The wiring hook runs after the index bootstrap (weight 5), so the statements index exists.
*/}}
{{- define "la-stack.superset.wiringWeight" -}}10{{- end }}

{{/*
The ECK CA volume and its mount, shared by every Superset Pod and lifecycle task: the whole
Secret (no subPath), so the yearly CA rotation reaches Superset.
*/}}
{{- define "la-stack.superset.caVolume" -}}
name: la-stack-es-ca
secret:
  secretName: {{ include "la-stack.es.caSecret" . }}
{{- end }}

{{- define "la-stack.superset.caMount" -}}
name: la-stack-es-ca
mountPath: {{ .Values.supersetWiring.caMountPath }}
readOnly: true
{{- end }}

{{/*
Superset's checks, run by templates/preflight.yaml.
*/}}
{{- define "la-stack.superset.preflight" -}}
{{- if .Values.superset.enabled }}
{{- include "la-stack.preflight.superset" . }}
{{- else if .Values.valkey.enabled }}
{{- fail "valkey.enabled must be false while superset.enabled is false: Valkey only serves Superset, and its password comes from Superset's generated Secret." }}
{{- end }}
{{- end }}

{{/*
The valkey subchart reads its password from the Secret the secrets hook generates; la-stack
checks that the names agree, and that Valkey runs when Superset does.
*/}}
{{- define "la-stack.preflight.superset" -}}
{{- $secret := include "la-stack.superset.credentialsSecret" . }}
{{- if not .Values.valkey.enabled }}
{{- fail "valkey.enabled must be true while superset.enabled is true: Superset's cache and Celery broker are that Valkey." }}
{{- end }}
{{- $auth := .Values.valkey.auth | default dict }}
{{- $default := index ($auth.aclUsers | default dict) "default" | default dict }}
{{- if or (not $auth.enabled) (ne (tpl ($auth.usersExistingSecret | default "") .) $secret) (ne ($default.passwordKey | default "") "REDIS_PASSWORD") }}
{{- fail (printf "valkey.auth must be enabled with usersExistingSecret %q and aclUsers.default.passwordKey REDIS_PASSWORD, the password Superset connects with." $secret) }}
{{- end }}
{{- if .Values.preflight.requireCnpgApi }}
{{- if not (.Capabilities.APIVersions.Has "postgresql.cnpg.io/v1") }}
{{- /* renovate: datasource=go depName=github.com/cloudnative-pg/cloudnative-pg extractVersion=^v(?<version>.+)$ */}}
{{- $cnpg := "1.30.0" }}
{{- fail (printf "The CloudNativePG operator is missing: this cluster does not serve postgresql.cnpg.io/v1, so install the operator first (kubectl apply --server-side -f https://raw.githubusercontent.com/cloudnative-pg/cloudnative-pg/release-%s/releases/cnpg-%s.yaml), or pass --api-versions postgresql.cnpg.io/v1 when rendering offline." (regexReplaceAll "\\.[0-9]+$" $cnpg "") $cnpg) }}
{{- end }}
{{- if and (not .Values.supersetOperator.enabled) (not (.Capabilities.APIVersions.Has "superset.apache.org/v1alpha1")) }}
{{- fail "The Superset operator is missing: supersetOperator.enabled is false and this cluster does not serve superset.apache.org/v1alpha1, so install it first (helm install superset-operator oci://ghcr.io/apache/superset-kubernetes-operator/charts/superset-operator --version 0.2.0 -n superset-operator --create-namespace) or set supersetOperator.enabled=true, or pass --api-versions superset.apache.org/v1alpha1 when rendering offline." }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The non-secret settings of the wiring hook (files/hooks/superset_wiring.py).
*/}}
{{- define "la-stack.superset.wiringSettings" -}}
{{- $w := .Values.supersetWiring }}
{{- $settings := dict
  "supersetUrl" (include "la-stack.superset.url" .)
  "username" .Values.superset.adminUser.username
  "credentialsSecret" (include "la-stack.superset.credentialsSecret" .)
  "databaseName" $w.databaseName
  "esUrl" (include "la-stack.es.url" .)
  "caFile" (printf "%s/ca.crt" (trimSuffix "/" $w.caMountPath))
  "index" .Values.elasticsearch.index
  "datasets" ($w.datasets | default list)
  "dashboards" $w.dashboards
  "bundleDir" "/etc/la-stack/superset/bundle" }}
{{- toPrettyJson $settings }}
{{- end }}

{{/*
The dashboard bundle (files/superset/**.yaml) as ConfigMap entries, and the volume items
that put each entry back at its path.
*/}}
{{- define "la-stack.superset.bundleKey" -}}
{{- trimPrefix "files/superset/" . | replace "/" "." }}
{{- end }}
