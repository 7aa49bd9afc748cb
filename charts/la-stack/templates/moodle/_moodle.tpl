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
