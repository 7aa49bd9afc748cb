{{/*
Chart name, truncated to the 63 characters a label value allows.
*/}}
{{- define "la-stack.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Release-scoped name for the objects the umbrella itself owns.
*/}}
{{- define "la-stack.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
`<fullname>-<suffix>`, the fullname cut so that the whole stays within 63 characters (a Job's
or Service's limit) and the suffix, which tells the objects apart, survives.
Usage: include "la-stack.nameOf" (list . "secrets")
*/}}
{{- define "la-stack.nameOf" -}}
{{- $suffix := index . 1 }}
{{- $base := include "la-stack.fullname" (index . 0) | trunc (int (sub 62 (len $suffix))) | trimSuffix "-" }}
{{- printf "%s-%s" $base $suffix }}
{{- end }}

{{- define "la-stack.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object the umbrella renders itself.
*/}}
{{- define "la-stack.labels" -}}
helm.sh/chart: {{ include "la-stack.chart" . }}
{{ include "la-stack.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: la-stack
{{- end }}

{{- define "la-stack.selectorLabels" -}}
app.kubernetes.io/name: {{ include "la-stack.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ECK API must be served before an Elasticsearch resource can be applied (and the
CloudNativePG API before Superset's metastore: la-stack.superset.preflight).
*/}}
{{- define "la-stack.preflight" -}}
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
{{- if and .Values.ralph.enabled $es.enabled }}
{{- include "la-stack.preflight.ralph" . }}
{{- end }}
{{- if .Values.ralph.enabled }}
{{- include "la-stack.preflight.lrs" . }}
{{- end }}
{{- if .Values.moodle.enabled }}
{{- include "la-stack.preflight.moodle" . }}
{{- end }}
{{- if .Values.superset.enabled }}
{{- include "la-stack.superset.preflight" . }}
{{- else if .Values.valkey.enabled }}
{{- fail "valkey.enabled must be false while superset.enabled is false: Valkey only serves Superset, and its password comes from Superset's generated Secret." }}
{{- end }}
{{- if .Values.networkPolicy.enabled }}
{{- include "la-stack.preflight.network" . }}
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

{{/*
The Secret MariaDB reads its passwords from; the MariaDB chart renders the value as a template.
*/}}
{{- define "la-stack.moodle.databaseSecret" -}}
{{- tpl .Values.moodle.mariadb.auth.existingSecret . }}
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

{{- define "la-stack.preflight.ralph" -}}
{{- $tls := .Values.ralph.database.tls }}
{{- $ca := include "la-stack.es.caSecret" . }}
{{- if not (and $tls.enabled (eq $tls.certificatesSecret $ca)) }}
{{- fail (printf "ralph.database.tls must be enabled with certificatesSecret %q so Ralph verifies Elasticsearch's certificate." $ca) }}
{{- end }}
{{- end }}

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
The Secret actually holding a credential: the user's existing one, else the generated one.
Usage: include "la-stack.credentialSecret" .Values.elasticsearch.users.writer
*/}}
{{- define "la-stack.credentialSecret" -}}
{{- default .secretName .existingSecret }}
{{- end }}

{{/*
Image reference of the hook and test Pods.
*/}}
{{- define "la-stack.hooks.image" -}}
{{- $img := .Values.hooks.image }}
{{- $registry := default $img.registry .Values.global.imageRegistry }}
{{- $name := printf "%s:%s" $img.repository (include "la-stack.imageTag" $img) }}
{{- if $registry }}
{{- printf "%s/%s" $registry $name }}
{{- else }}
{{- $name }}
{{- end }}
{{- end }}

{{/*
An image's tag with its digest when one is set (`5.0.1@sha256:…`): pulled by digest.
*/}}
{{- define "la-stack.imageTag" -}}
{{- .tag }}{{ with .digest }}@{{ . }}{{ end }}
{{- end }}

{{/*
Pod-level settings shared by every hook and test Pod: restricted Pod Security.
*/}}
{{- define "la-stack.hooks.podSpec" -}}
restartPolicy: Never
automountServiceAccountToken: false
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  seccompProfile:
    type: RuntimeDefault
{{- with .Values.hooks.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.hooks.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Container-level settings shared by every hook and test container.
*/}}
{{- define "la-stack.hooks.container" -}}
image: {{ include "la-stack.hooks.image" . }}
imagePullPolicy: {{ .Values.hooks.image.pullPolicy }}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: ["ALL"]
resources:
  {{- toYaml .Values.hooks.resources | nindent 2 }}
{{- end }}

{{/*
activeDeadlineSeconds of a hook Job: the program's own deadline plus a minute for the Pod
to start and report. Usage: include "la-stack.hooks.activeDeadline" .Values.hooks.deadlineSeconds
*/}}
{{- define "la-stack.hooks.activeDeadline" -}}
{{- add . 60 }}
{{- end }}

{{/*
The `--timeout` helm install/upgrade needs: Helm waits for each hook Job up to it (default
5m), so it must exceed the longest Job deadline; one minute more, rounded up to minutes.
*/}}
{{- define "la-stack.helmTimeout" -}}
{{- $longest := int (include "la-stack.hooks.activeDeadline" .Values.hooks.deadlineSeconds) }}
{{- if and .Values.superset.enabled .Values.supersetWiring.enabled }}
{{- $longest = max $longest (int (include "la-stack.hooks.activeDeadline" .Values.supersetWiring.deadlineSeconds)) }}
{{- end }}
{{- printf "%dm" (add (div (add $longest 59) 60) 1) }}
{{- end }}

{{/*
Annotations of a hook object. Usage:
include "la-stack.hook" (dict "ctx" $ "phases" "pre-install,pre-upgrade" "weight" -10)
*/}}
{{- define "la-stack.hook" -}}
helm.sh/hook: {{ .phases }}
helm.sh/hook-weight: {{ .weight | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end }}

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
{{- $_ := set $config "ralph" (dict "envSecret" .Values.ralph.lrsEnvSecret "authSecret" .Values.ralph.lrsAuthSecret "esUrl" (include "la-stack.es.url" .) "esUser" (include "la-stack.credentialSecret" .Values.elasticsearch.users.writer) "deployments" (list (include "la-stack.ralph.serviceName" .))) }}
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

{{/*
ConfigMap data entries for the hook programs (files/hooks/*.py).
*/}}
{{- define "la-stack.hooks.programs" -}}
{{- range $path, $_ := .Files.Glob "files/hooks/*.py" }}
{{ base $path }}: |
  {{- $.Files.Get $path | nindent 2 }}
{{- end }}
{{- end }}

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
