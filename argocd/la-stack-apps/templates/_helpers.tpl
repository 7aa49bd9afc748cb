{{/* Labels of every object the parent renders. */}}
{{- define "la-stack-apps.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: la-stack
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* The environment name, checked: it picks values/<environment>.yaml. */}}
{{- define "la-stack-apps.environment" -}}
{{- $env := required "environment is required: render with -f values-<environment>.yaml" .Values.environment -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $env) -}}
{{- fail (printf "environment %q must be a lower-case name (it selects values/<environment>.yaml)" $env) -}}
{{- end -}}
{{- $env -}}
{{- end }}

{{/*
syncPolicy of a child Application. Retries cover the first sync after the operator's
CRDs appear, when Argo CD's API discovery may still be catching up.
Usage: include "la-stack-apps.syncPolicy" (dict "root" $ "options" (list ...))
*/}}
{{- define "la-stack-apps.syncPolicy" -}}
{{- with .root.Values.syncPolicy }}
{{- if .automated }}
automated:
  prune: {{ .prune }}
  selfHeal: {{ .selfHeal }}
{{- end }}
{{- end }}
syncOptions:
  {{- toYaml .options | nindent 2 }}
retry:
  limit: 5
  backoff:
    duration: 10s
    factor: 2
    maxDuration: 3m
{{- end }}
