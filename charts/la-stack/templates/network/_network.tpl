{{/*
Pod selectors of the release's components, as the charts that run them label their Pods
(ralph, Bitnami moodle/mariadb, the Superset operator, CloudNativePG, valkey, ECK).
JSON: name -> LabelSelector.
*/}}
{{- define "la-stack.network.selectors" -}}
{{- $release := .Release.Name }}
{{- $selectors := dict "hooks" (dict "matchLabels" (fromYaml (include "la-stack.selectorLabels" .))) }}
{{- $_ := set $selectors "secretsHook" (dict "matchLabels" (merge (dict "app.kubernetes.io/component" "secrets-hook") (fromYaml (include "la-stack.selectorLabels" .)))) }}
{{- if (index .Values "eck-elasticsearch" "enabled") }}
{{- $_ := set $selectors "elasticsearch" (dict "matchLabels" (dict "elasticsearch.k8s.elastic.co/cluster-name" (include "la-stack.es.name" .))) }}
{{- end }}
{{- if .Values.ralph.enabled }}
{{- $_ := set $selectors "ralph" (dict "matchLabels" (fromYaml (include "la-stack.ralph.selectorLabels" .))) }}
{{- end }}
{{- if .Values.moodle.enabled }}
{{- $_ := set $selectors "moodle" (dict "matchLabels" (dict "app.kubernetes.io/name" (default "moodle" .Values.moodle.nameOverride) "app.kubernetes.io/instance" $release)) }}
{{- if .Values.moodle.mariadb.enabled }}
{{- $_ := set $selectors "mariadb" (dict "matchLabels" (dict "app.kubernetes.io/name" (default "mariadb" .Values.moodle.mariadb.nameOverride) "app.kubernetes.io/instance" $release)) }}
{{- end }}
{{- end }}
{{- if .Values.superset.enabled }}
{{- /* Every Pod the operator creates for the Superset resource (components, lifecycle tasks). */}}
{{- $superset := dict "app.kubernetes.io/name" "superset" "superset.apache.org/parent" (include "la-stack.superset.name" .) }}
{{- $_ := set $selectors "superset" (dict "matchLabels" $superset) }}
{{- $_ := set $selectors "supersetWeb" (dict "matchLabels" (merge (dict "app.kubernetes.io/component" "web-server") $superset)) }}
{{- $_ := set $selectors "supersetMetastore" (dict "matchLabels" (dict "cnpg.io/cluster" (include "la-stack.superset.metastoreName" .))) }}
{{- if .Values.valkey.enabled }}
{{- $_ := set $selectors "supersetCache" (dict "matchLabels" (dict "app.kubernetes.io/name" (default "valkey" .Values.valkey.nameOverride) "app.kubernetes.io/instance" $release)) }}
{{- end }}
{{- end }}
{{- if .Values.supersetOperator.enabled }}
{{- $_ := set $selectors "supersetOperator" (dict "matchLabels" (dict "app.kubernetes.io/name" "superset-operator" "app.kubernetes.io/instance" $release)) }}
{{- end }}
{{- toJson $selectors }}
{{- end }}

{{/*
The paths between components: ingress rules of the policy of `to`, egress rules of the
policy of `from`. JSON list of {from, to, ports}.
*/}}
{{- define "la-stack.network.paths" -}}
{{- $s := fromJson (include "la-stack.network.selectors" .) }}
{{- $paths := list }}
{{- range $path := list
      (list "moodle" "ralph" 8080)
      (list "moodle" "mariadb" 3306)
      (list "ralph" "elasticsearch" 9200)
      (list "superset" "elasticsearch" 9200)
      (list "hooks" "elasticsearch" 9200)
      (list "elasticsearch" "elasticsearch" 9300)
      (list "superset" "supersetMetastore" 5432)
      (list "superset" "supersetCache" 6379)
      (list "supersetMetastore" "supersetMetastore" 5432)
      (list "hooks" "ralph" 8080)
      (list "hooks" "supersetWeb" 8088) }}
{{- if and (hasKey $s (index $path 0)) (hasKey $s (index $path 1)) }}
{{- $paths = append $paths (dict "from" (index $path 0) "to" (index $path 1) "port" (index $path 2)) }}
{{- end }}
{{- end }}
{{- toJson $paths }}
{{- end }}

{{/*
Ports of each component that the ingress controller may reach (its Service targets).
*/}}
{{- define "la-stack.network.ingressPorts" -}}
{{- toJson (dict "ralph" (list 8080) "supersetWeb" (list 8088) "moodle" (list 8080 8443)) }}
{{- end }}

{{/*
The network policies' checks, run by templates/preflight.yaml.
*/}}
{{- define "la-stack.network.preflight" -}}
{{- if .Values.networkPolicy.enabled }}
{{- include "la-stack.preflight.network" . }}
{{- end }}
{{- end }}

{{/*
Policies are additive: the Moodle chart's own ones (all egress allowed) would undo ours.
*/}}
{{- define "la-stack.preflight.network" -}}
{{- if and .Values.moodle.enabled (dig "networkPolicy" "enabled" false .Values.moodle) }}
{{- fail "moodle.networkPolicy.enabled must be false while networkPolicy.enabled is true: the Moodle chart's own policy allows all egress, which would undo la-stack's." }}
{{- end }}
{{- if and .Values.moodle.enabled .Values.moodle.mariadb.enabled (dig "networkPolicy" "enabled" false .Values.moodle.mariadb) }}
{{- fail "moodle.mariadb.networkPolicy.enabled must be false while networkPolicy.enabled is true: the MariaDB chart's own policy allows all egress, which would undo la-stack's." }}
{{- end }}
{{- end }}
