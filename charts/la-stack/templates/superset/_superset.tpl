{{/*
Superset's web Service, named as the superset subchart names it.
*/}}
{{- define "la-stack.superset.fullname" -}}
{{- $s := .Values.superset }}
{{- if $s.fullnameOverride }}
{{- $s.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default "superset" $s.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "la-stack.superset.url" -}}
{{- printf "http://%s.%s.svc:%v" (include "la-stack.superset.fullname" .) .Release.Namespace (dig "service" "port" 8088 .Values.superset) }}
{{- end }}

{{/*
The wiring hook runs after Superset's own init Job (weight 0, when enabled) and after the
index bootstrap (weight 5), so the admin user and the statements index exist.
*/}}
{{- define "la-stack.superset.wiringWeight" -}}10{{- end }}

{{/*
The upstream chart takes fixed names, so la-stack checks that the names in the `superset`
section are the ones the wiring generates and mounts.
*/}}
{{- define "la-stack.superset.preflight" -}}
{{- $s := .Values.superset }}
{{- $w := .Values.supersetWiring }}
{{- $secret := $w.credentialsSecret }}
{{- if not (has $secret ($s.envFromSecrets | default list)) }}
{{- fail (printf "superset.envFromSecrets must list %q (supersetWiring.credentialsSecret): Superset reads its secret key and passwords from it." $secret) }}
{{- end }}
{{- $pg := $s.postgresql | default dict }}
{{- if $pg.enabled }}
{{- $auth := $pg.auth | default dict }}
{{- if or (ne ($auth.existingSecret | default "") $secret) (ne (dig "secretKeys" "userPasswordKey" "" $auth) "DB_PASS") }}
{{- fail (printf "superset.postgresql.auth.existingSecret must be %q with secretKeys.userPasswordKey DB_PASS, the password Superset connects with." $secret) }}
{{- end }}
{{- end }}
{{- $redis := $s.redis | default dict }}
{{- if $redis.enabled }}
{{- $auth := $redis.auth | default dict }}
{{- if or (not $auth.enabled) (ne ($auth.existingSecret | default "") $secret) (ne ($auth.existingSecretPasswordKey | default "") "REDIS_PASSWORD") }}
{{- fail (printf "superset.redis.auth must be enabled with existingSecret %q and existingSecretPasswordKey REDIS_PASSWORD, the password Superset connects with." $secret) }}
{{- end }}
{{- end }}
{{- if $w.enabled }}
{{- $ca := include "la-stack.es.caSecret" . }}
{{- $volume := "" }}
{{- range ($s.extraVolumes | default list) }}
{{- if and .secret (eq (.secret.secretName | default "") $ca) }}{{ $volume = .name }}{{ end }}
{{- end }}
{{- $mounted := false }}
{{- range ($s.extraVolumeMounts | default list) }}
{{- if and $volume (eq .name $volume) (eq (trimSuffix "/" .mountPath) (trimSuffix "/" $w.caMountPath)) }}{{ $mounted = true }}{{ end }}
{{- end }}
{{- if not $mounted }}
{{- fail (printf "superset.extraVolumes and superset.extraVolumeMounts must mount Secret %q at %s (supersetWiring.caMountPath): the database URI verifies Elasticsearch with that CA." $ca $w.caMountPath) }}
{{- end }}
{{- $init := $s.init | default dict }}
{{- if $init.enabled }}
{{- $weight := index ($init.jobAnnotations | default dict) "helm.sh/hook-weight" | default "0" | int }}
{{- if ge $weight (include "la-stack.superset.wiringWeight" . | int) }}
{{- fail (printf "superset.init.jobAnnotations helm.sh/hook-weight must be below %s, the weight of la-stack's Superset wiring hook, which needs the admin user." (include "la-stack.superset.wiringWeight" .)) }}
{{- end }}
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
  "username" .Values.superset.init.adminUser.username
  "credentialsSecret" $w.credentialsSecret
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
