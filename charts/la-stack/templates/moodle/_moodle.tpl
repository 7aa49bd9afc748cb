{{/*
The Secret MariaDB reads its passwords from; the MariaDB chart renders the value as a template.
*/}}
{{- define "la-stack.moodle.databaseSecret" -}}
{{- tpl .Values.moodle.mariadb.auth.existingSecret . }}
{{- end }}

{{/*
The logstore_xapi settings both wiring entry points set, from `logstoreXapi`.
*/}}
{{- define "la-stack.moodle.xapiSettings" -}}
{{- $x := .Values.logstoreXapi }}
{{- $settings := dict "backgroundmode" (ternary "1" "0" $x.delivery.backgroundMode) "maxbatchsize" (toString $x.delivery.maxBatchSize) "resendfailedbatches" (ternary "1" "0" $x.delivery.resendFailedBatches) }}
{{- range $name, $value := $x.extraSettings }}
{{- $_ := set $settings $name (toString $value) }}
{{- end }}
{{- toJson $settings }}
{{- end }}

{{/*
ConfigMap data entries of the wiring programs (files/moodle/*.php).
*/}}
{{- define "la-stack.moodle.programs" -}}
{{- range $path, $_ := .Files.Glob "files/moodle/*.php" }}
{{ base $path }}: |
  {{- $.Files.Get $path | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Moodle's checks, run by templates/preflight.yaml.
*/}}
{{- define "la-stack.moodle.preflight" -}}
{{- if .Values.moodle.enabled }}
{{- include "la-stack.preflight.moodle" . }}
{{- end }}
{{- end }}

{{- define "la-stack.preflight.moodle" -}}
{{- if not .Values.moodle.existingSecret }}
{{- fail "moodle.existingSecret must name the Secret holding moodle-password (la-stack generates it once); an empty value makes the Moodle chart draw a new random password at every render." }}
{{- end }}
{{- $db := .Values.moodle.mariadb }}
{{- $read := printf "%s-mariadb" .Release.Name }}
{{- if and $db.enabled (ne (include "la-stack.moodle.databaseSecret" .) $read) }}
{{- fail (printf "moodle.mariadb.auth.existingSecret must render to %q: the Moodle chart always reads the database password from <release>-mariadb." $read) }}
{{- end }}
{{- if .Values.logstoreXapi.enabled }}
{{- $sidecar := dict }}
{{- range .Values.moodle.sidecars }}{{ if eq .name "xapi" }}{{ $sidecar = . }}{{ end }}{{ end }}
{{- if not $sidecar }}
{{- fail "moodle.sidecars must keep the container named xapi while logstoreXapi.enabled is true: it installs the plugin and runs Moodle's cron." }}
{{- end }}
{{- $moodle := .Values.lrs.accounts.moodle }}
{{- $want := default (tpl $moodle.secretName .) $moodle.existingSecret }}
{{- range $sidecar.env }}
{{- if and .valueFrom .valueFrom.secretKeyRef (ne (tpl .valueFrom.secretKeyRef.name $) $want) }}
{{- fail (printf "moodle.sidecars[xapi] env %s must read Secret %q (lrs.accounts.moodle)." .name $want) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
