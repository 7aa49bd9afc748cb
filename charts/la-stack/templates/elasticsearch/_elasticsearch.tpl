{{/*
Name of the Elasticsearch resource, as the eck-elasticsearch subchart computes it.
*/}}
{{- define "la-stack.es.name" -}}
{{- $es := index .Values "eck-elasticsearch" }}
{{- if $es.fullnameOverride }}
{{- $es.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains "eck-elasticsearch" .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-eck-elasticsearch" .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
Elasticsearch HTTPS endpoint inside the cluster. The host is one of the SANs of ECK's
self-signed certificate (`.svc.cluster.local` is not), so TLS verification succeeds.
*/}}
{{- define "la-stack.es.url" -}}
{{- printf "https://%s-es-http.%s.svc:9200" (include "la-stack.es.name" .) .Release.Namespace }}
{{- end }}

{{/*
The Secret in which ECK publishes the CA of the HTTP layer (keys ca.crt, tls.crt).
*/}}
{{- define "la-stack.es.caSecret" -}}
{{- printf "%s-es-http-certs-public" (include "la-stack.es.name" .) }}
{{- end }}

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

{{/*
Elasticsearch's checks, run by templates/preflight.yaml. The ECK API must be served before an
Elasticsearch resource can be applied.
*/}}
{{- define "la-stack.elasticsearch.preflight" -}}
{{- $es := index .Values "eck-elasticsearch" }}
{{- if and $es.enabled .Values.preflight.requireEckApi (not (.Capabilities.APIVersions.Has "elasticsearch.k8s.elastic.co/v1")) }}
{{- /* renovate: datasource=go depName=github.com/elastic/cloud-on-k8s/v3 extractVersion=^v(?<version>.+)$ */}}
{{- $eckOperator := "3.5.0" }}
{{- fail (printf "The ECK operator is missing: this cluster does not serve elasticsearch.k8s.elastic.co/v1, so install the operator first (helm install elastic-operator eck-operator --repo https://helm.elastic.co --version %s -n elastic-system --create-namespace), or pass --api-versions elasticsearch.k8s.elastic.co/v1 when rendering offline." $eckOperator) }}
{{- end }}
{{- if $es.enabled }}
{{- include "la-stack.preflight.elasticsearch" . }}
{{- include "la-stack.preflight.snapshots" . }}
{{- end }}
{{- end }}

{{/*
The upstream charts take fixed Secret names, so la-stack checks that the names it
generates are the names those charts were told to use.
*/}}
{{- define "la-stack.preflight.elasticsearch" -}}
{{- $es := index .Values "eck-elasticsearch" }}
{{- $name := include "la-stack.es.name" . }}
{{- if gt (len $name) 36 }}
{{- fail (printf "eck-elasticsearch.fullnameOverride: the Elasticsearch name %q is longer than the 36 characters ECK allows." $name) }}
{{- end }}
{{- $realm := list }}
{{- range (($es.auth | default dict).fileRealm | default list) }}
{{- $realm = append $realm .secretName }}
{{- end }}
{{- range $role, $user := .Values.elasticsearch.users }}
{{- $secret := include "la-stack.credentialSecret" $user }}
{{- if not (has $secret $realm) }}
{{- fail (printf "eck-elasticsearch.auth.fileRealm must list secretName %q (elasticsearch.users.%s), or Elasticsearch will not know that user." $secret $role) }}
{{- end }}
{{- end }}
{{- $roles := list }}
{{- range (($es.auth | default dict).roles | default list) }}
{{- $roles = append $roles .secretName }}
{{- end }}
{{- if not (has .Values.elasticsearch.rolesSecret $roles) }}
{{- fail (printf "eck-elasticsearch.auth.roles must list secretName %q (elasticsearch.rolesSecret), or the la-stack roles will not exist." .Values.elasticsearch.rolesSecret) }}
{{- end }}
{{- include "la-stack.preflight.esSelectors" (dict "es" $es "name" $name) }}
{{- end }}

{{/*
Values cannot template the Elasticsearch name into a label selector, so a selector on
ECK's cluster-name label that names another cluster would silently select nothing.
*/}}
{{- define "la-stack.preflight.esSelectors" -}}
{{- $label := "elasticsearch.k8s.elastic.co/cluster-name" }}
{{- $pdb := dig "podDisruptionBudget" "spec" "selector" "matchLabels" dict .es }}
{{- if and (hasKey $pdb $label) (ne (index $pdb $label) .name) }}
{{- fail (printf "eck-elasticsearch.podDisruptionBudget.spec.selector.matchLabels[%s] is %q but the Elasticsearch is named %q: the budget would cover no Pod." $label (index $pdb $label) .name) }}
{{- end }}
{{- range $i, $set := .es.nodeSets | default list }}
{{- $anti := dig "podTemplate" "spec" "affinity" "podAntiAffinity" dict $set }}
{{- range $kind, $terms := $anti }}
{{- range $j, $term := $terms }}
{{- $selector := dig "labelSelector" "matchLabels" dict (dig "podAffinityTerm" $term $term) }}
{{- if and (hasKey $selector $label) (ne (index $selector $label) $.name) }}
{{- fail (printf "eck-elasticsearch.nodeSets[%d].podTemplate.spec.affinity.podAntiAffinity.%s[%d] selects %s=%q but the Elasticsearch is named %q: the rule would keep no Pods apart." $i $kind $j $label (index $selector $label) $.name) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
