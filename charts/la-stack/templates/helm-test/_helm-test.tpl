{{/*
The index `helm test` writes to: outside the write alias, so test statements never reach
the dashboards.
*/}}
{{- define "la-stack.es.testIndex" -}}
{{- printf "%s.helm-test" .Values.elasticsearch.index }}
{{- end }}

{{/*
The LRS account `helm test` posts with (its target is the helm-test index).
*/}}
{{- define "la-stack.helmTest.lrsSecret" -}}
{{- include "la-stack.nameOf" (list . "lrs-helm-test") }}
{{- end }}
