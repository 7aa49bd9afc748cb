{{/*
The statements store's settings, as the index bootstrap hook reads them (es-bootstrap.json
in the hook-programs ConfigMap). The hook adds what only the cluster can tell: whether it
has ILM and SLM.
*/}}
{{- define "la-stack.es.bootstrapConfig" -}}
{{- $store := .Values.elasticsearch.statements }}
{{- $settings := dict "number_of_shards" ($store.primaryShards | int) "auto_expand_replicas" $store.autoExpandReplicas }}
{{- if $store.bestCompression }}{{ $_ := set $settings "codec" "best_compression" }}{{ end }}
{{- $rollover := dict "max_primary_shard_size" $store.rollover.maxPrimaryShardSize "max_age" $store.rollover.maxAge }}
{{- $config := dict "alias" .Values.elasticsearch.index "testIndex" (include "la-stack.es.testIndex" .) "settings" $settings "lifecycle" (dict "rollover" $rollover "deleteAfter" $store.deleteAfter) }}
{{- $snap := .Values.elasticsearch.snapshots }}
{{- if $snap.enabled }}
{{- $_ := set $config "snapshots" (dict "repository" $snap.repository "policy" $snap.policy) }}
{{- end }}
{{- toPrettyJson $config }}
{{- end }}

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

{{/*
Repository settings are not the place for credentials: Elasticsearch takes those from its
keystore (eck-elasticsearch.secureSettings).
*/}}
{{- define "la-stack.preflight.snapshots" -}}
{{- $snap := .Values.elasticsearch.snapshots }}
{{- if $snap.enabled }}
{{- range $key, $_ := $snap.repository.settings }}
{{- if regexMatch "(?i)(access_key|secret_key|session_token|sas_token|credentials|password|^key$)" $key }}
{{- fail (printf "elasticsearch.snapshots.repository.settings.%s looks like a credential: put it in a Secret listed in eck-elasticsearch.secureSettings instead (Elasticsearch reads repository credentials from its keystore)." $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
