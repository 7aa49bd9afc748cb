{{/*
The JSON the secrets hook reads: which credentials exist or must be generated, and
which Secrets are derived from them (see files/hooks/README.md).
*/}}
{{- define "la-stack.hooks.secretsConfig" -}}
{{- $esUsers := list }}
{{- if (index .Values "eck-elasticsearch" "enabled") }}
{{- range $role, $user := .Values.elasticsearch.users }}
{{- $roleName := get (dict "writer" "la_stack_statements_writer" "reader" "la_stack_statements_reader" "bootstrap" "la_stack_index_bootstrap") $role }}
{{- $esUsers = append $esUsers (dict "secret" $user.secretName "username" $user.username "roles" (list $roleName) "existingSecret" $user.existingSecret) }}
{{- end }}
{{- end }}
{{- $accounts := list }}
{{- /*
Generated Secrets outlive releases and are not Helm's: they say who made them, and under
Argo CD they are neither the Application's (its label tracking reads
app.kubernetes.io/instance, which earlier versions set and the hook now removes) nor pruned.
*/}}
{{- $labels := dict "app.kubernetes.io/name" (include "la-stack.name" .) "app.kubernetes.io/part-of" "la-stack" "app.kubernetes.io/managed-by" "la-stack-secrets-hook" "la-stack.io/release" .Release.Name }}
{{- $annotations := dict "argocd.argoproj.io/compare-options" "IgnoreExtraneous" "argocd.argoproj.io/sync-options" "Prune=false" }}
{{- $config := dict "labels" $labels "annotations" $annotations "staleLabels" (list "app.kubernetes.io/instance") "esUsers" $esUsers }}
{{- if .Values.ralph.enabled }}
{{- range $acct := (include "la-stack.lrs.accounts" . | fromJsonArray) }}
{{- $entry := dict "secret" $acct.secret "username" $acct.username "scopes" $acct.scopes "agent" (dict "mbox" $acct.mbox) "existingSecret" $acct.existingSecret }}
{{- if and (has $acct.name (list "moodle" "admin")) (not $acct.source) }}
{{- include "la-stack.hooks.formerly" (dict "entry" $entry "secret" (printf "la-stack-lrs-%s" $acct.name) "key" (printf "lrs.accounts.%s.secretName" $acct.name)) }}
{{- end }}
{{- $accounts = append $accounts $entry }}
{{- end }}
{{- /* `helm test` posts with its own account into its own index, outside the dashboards. */}}
{{- $accounts = append $accounts (dict "secret" (include "la-stack.helmTest.lrsSecret" .) "username" "helm-test" "scopes" (list "statements/write" "statements/read/mine") "agent" (dict "mbox" "mailto:helm-test@example.org") "existingSecret" "" "target" (include "la-stack.es.testIndex" .)) }}
{{- /*
`deployments`: the long-running readers of the two derived Secrets, rolled when one is
rewritten. Only Ralph's (the ralph chart names its Deployment as its Service); its
CronJobs read the Secrets afresh at each run.
*/}}
{{- $_ := set $config "ralph" (dict "envSecret" .Values.ralph.lrsEnvSecret "authSecret" .Values.ralph.lrsAuthSecret "esUrl" (include "la-stack.es.url" .) "esUser" .Values.elasticsearch.users.writer.secretName "deployments" (list (include "la-stack.ralph.serviceName" .))) }}
{{- end }}
{{- $_ := set $config "lrsAccounts" $accounts }}
{{- $generic := list }}
{{- if .Values.moodle.enabled }}
{{- $generic = append $generic (dict "secret" .Values.moodle.existingSecret "keys" (dict "moodle-password" 24) "existingSecret" "") }}
{{- if .Values.moodle.mariadb.enabled }}
{{- $generic = append $generic (dict "secret" (include "la-stack.moodle.databaseSecret" .) "keys" (dict "mariadb-root-password" 32 "mariadb-password" 32) "existingSecret" "") }}
{{- end }}
{{- end }}
{{- if .Values.superset.enabled }}
{{- /* The Superset resource and Valkey read these keys; DB_PASS stays generated so an
     existing Secret keeps its shape (CloudNativePG now generates the metastore password). */}}
{{- $entry := dict "secret" (include "la-stack.superset.credentialsSecret" .) "keys" (dict "SUPERSET_SECRET_KEY" 64 "LA_STACK_ADMIN_PASSWORD" 24 "DB_PASS" 32 "REDIS_PASSWORD" 32) "existingSecret" "" }}
{{- include "la-stack.hooks.formerly" (dict "entry" $entry "secret" "la-stack-superset" "key" "supersetWiring.credentialsSecret and valkey.auth.usersExistingSecret") }}
{{- $generic = append $generic $entry }}
{{- end }}
{{- $_ := set $config "generic" $generic }}
{{- toPrettyJson $config }}
{{- end }}

{{/*
Sets `formerly` on a secrets-hook entry whose Secret earlier versions named `secret` for
every release (now the release's own name), so the hook keeps an upgrade from generating
new credentials beside the old ones.
*/}}
{{- define "la-stack.hooks.formerly" -}}
{{- if ne .entry.secret .secret }}
{{- $_ := set .entry "formerly" (dict "secret" .secret "key" .key) }}
{{- end }}
{{- end }}

{{/*
Every Secret name the secrets hook may read (get) and the ones it may rewrite (update):
the derived ones, and the generated ones whose labels and annotations it keeps current.
A user's existingSecret is only read. `deployments`: the ones it may patch (roll).
*/}}
{{- define "la-stack.hooks.secretNames" -}}
{{- $config := fromJson (include "la-stack.hooks.secretsConfig" .) }}
{{- $read := list }}
{{- $update := list }}
{{- range (concat $config.esUsers $config.lrsAccounts $config.generic) }}
{{- $read = append $read .secret }}
{{- with .formerly }}{{ $read = append $read .secret }}{{ end }}
{{- if .existingSecret }}
{{- $read = append $read .existingSecret }}
{{- else }}
{{- $update = append $update .secret }}
{{- end }}
{{- end }}
{{- with $config.ralph }}
{{- $update = concat $update (list .envSecret .authSecret) }}
{{- end }}
{{- $deployments := list }}
{{- with $config.ralph }}{{ $deployments = .deployments }}{{ end }}
{{- toJson (dict "read" (concat $read $update | uniq) "update" ($update | uniq) "deployments" $deployments) }}
{{- end }}
