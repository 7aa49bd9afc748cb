{{- /* What every hook Job and the helm test share: Pod settings, deadlines, hook
annotations and the programs they run. */ -}}

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
ConfigMap data entries for the hook programs (files/hooks/*.py).
*/}}
{{- define "la-stack.hooks.programs" -}}
{{- range $path, $_ := .Files.Glob "files/hooks/*.py" }}
{{ base $path }}: |
  {{- $.Files.Get $path | nindent 2 }}
{{- end }}
{{- end }}
