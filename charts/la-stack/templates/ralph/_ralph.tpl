{{/*
Ralph's Service, as the ralph subchart names it, and the xAPI endpoint behind it.
*/}}
{{- define "la-stack.ralph.serviceName" -}}
{{- if .Values.ralph.fullnameOverride }}
{{- .Values.ralph.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains "ralph" .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-ralph" .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
The labels the ralph chart puts on Ralph's Pods (its selectorLabels).
*/}}
{{- define "la-stack.ralph.selectorLabels" -}}
app.kubernetes.io/name: {{ default "ralph" .Values.ralph.nameOverride }}
app.kubernetes.io/instance: {{ .Release.Name }}
app: ralph
service: app
{{- end }}

{{- define "la-stack.ralph.xapiUrl" -}}
{{- printf "http://%s.%s.svc:%v/xAPI/" (include "la-stack.ralph.serviceName" .) .Release.Namespace (dig "service" "port" 8080 .Values.ralph) }}
{{- end }}

{{/*
Every LRS account of the release as a JSON list: the `lrs.accounts` entries (`moodle` only
while la-stack deploys Moodle) and one per `lrs.sources` entry, each with the defaults of a
source filled in. Keys: name, source (bool), secret, username, scopes, mbox, existingSecret.
*/}}
{{- define "la-stack.lrs.accounts" -}}
{{- $accounts := list }}
{{- range $name, $acct := .Values.lrs.accounts }}
{{- if or (ne $name "moodle") $.Values.moodle.enabled }}
{{- $accounts = append $accounts (dict "name" $name "source" false "secret" (tpl $acct.secretName $) "username" $acct.username "scopes" $acct.scopes "mbox" $acct.mbox "existingSecret" $acct.existingSecret) }}
{{- end }}
{{- end }}
{{- range $name, $src := .Values.lrs.sources }}
{{- $accounts = append $accounts (dict "name" $name "source" true "secret" (include "la-stack.nameOf" (list $ (printf "lrs-%s" $name))) "username" (default $name $src.username) "scopes" (default (list "statements/write" "statements/read/mine") $src.scopes) "mbox" $src.mbox "existingSecret" (default "" $src.existingSecret)) }}
{{- end }}
{{- toJson $accounts }}
{{- end }}

{{/*
The xAPI endpoint the sources outside the cluster send to: the Ingress when there is one,
else the in-cluster Service (a source in another namespace).
*/}}
{{- define "la-stack.lrs.sourceEndpoint" -}}
{{- if .Values.lrs.ingress.enabled }}
{{- printf "https://%s/xAPI/" .Values.lrs.ingress.host }}
{{- else }}
{{- include "la-stack.ralph.xapiUrl" . }}
{{- end }}
{{- end }}

{{/*
Two accounts with one username would share one auth.json entry; the upstream Ingress has
neither TLS nor the body size batches need.
*/}}
{{- define "la-stack.preflight.lrs" -}}
{{- range $name, $_ := .Values.lrs.sources }}
{{- if not (and (le (len $name) 40) (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $name)) }}
{{- fail (printf "lrs.sources: the name %q must be a lowercase DNS label of at most 40 characters (it names the source's Secret)." $name) }}
{{- end }}
{{- end }}
{{- $seen := dict }}
{{- range $acct := (include "la-stack.lrs.accounts" . | fromJsonArray) }}
{{- $key := printf "%s.%s" (ternary "lrs.sources" "lrs.accounts" $acct.source) $acct.name }}
{{- $other := get $seen $acct.username }}
{{- if $other }}
{{- fail (printf "%s.username %q is already the username of %s: each LRS account needs its own." $key $acct.username $other) }}
{{- end }}
{{- $_ := set $seen $acct.username $key }}
{{- end }}
{{- if (dig "ingress" "enabled" false .Values.ralph) }}
{{- fail "ralph.ingress.enabled must stay false: use lrs.ingress, which always has TLS and the body size xAPI batches need." }}
{{- end }}
{{- $logging := .Values.ralph.loggingConfigConfigMap }}
{{- range .Values.ralph.extraVolumes }}
{{- if and (eq .name "logging-config") (ne (dig "configMap" "name" "" .) $logging) }}
{{- fail (printf "ralph.extraVolumes[logging-config] must mount ConfigMap %q (ralph.loggingConfigConfigMap), the logging settings the ralph chart creates." $logging) }}
{{- end }}
{{- end }}
{{- include "la-stack.preflight.ralphBudget" . }}
{{- end }}

{{/*
A disruption budget that lets a drain take every Ralph Pod protects nothing: the fewest
Pods there can be (the HPA's minimum, else replicaCount) must exceed maxUnavailable.
*/}}
{{- define "la-stack.preflight.ralphBudget" -}}
{{- $pdb := .Values.ralph.podDisruptionBudget }}
{{- $hpa := .Values.ralph.autoscaling }}
{{- $key := ternary "ralph.autoscaling.minReplicas" "ralph.replicaCount" $hpa.enabled }}
{{- $fewest := ternary $hpa.minReplicas .Values.ralph.replicaCount $hpa.enabled | int }}
{{- if and $pdb.enabled (le $fewest (int $pdb.maxUnavailable)) }}
{{- fail (printf "%s (%d) must exceed ralph.podDisruptionBudget.maxUnavailable (%d), or a node drain may stop every Ralph Pod." $key $fewest (int $pdb.maxUnavailable)) }}
{{- end }}
{{- end }}

{{/*
Ralph's checks, run by templates/preflight.yaml.
*/}}
{{- define "la-stack.ralph.preflight" -}}
{{- $es := index .Values "eck-elasticsearch" }}
{{- if and .Values.ralph.enabled $es.enabled }}
{{- include "la-stack.preflight.ralph" . }}
{{- end }}
{{- if .Values.ralph.enabled }}
{{- include "la-stack.preflight.lrs" . }}
{{- end }}
{{- end }}

{{- define "la-stack.preflight.ralph" -}}
{{- $tls := .Values.ralph.database.tls }}
{{- $ca := include "la-stack.es.caSecret" . }}
{{- if not (and $tls.enabled (eq $tls.certificatesSecret $ca)) }}
{{- fail (printf "ralph.database.tls must be enabled with certificatesSecret %q so Ralph verifies Elasticsearch's certificate." $ca) }}
{{- end }}
{{- end }}
