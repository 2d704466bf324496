{{/* Name of the release's objects: the release name, with the chart name unless it holds it. */}}
{{- define "workbench.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "workbench.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The profiles document: values.profiles, else hub/profiles.yaml (linked as files/profiles.yaml). */}}
{{- define "workbench.profiles" -}}
{{- $text := .Values.profiles | default (.Files.Get "files/profiles.yaml") -}}
{{- $doc := $text | fromYaml -}}
{{- if or (hasKey $doc "Error") (not (kindIs "slice" $doc.profiles)) -}}
{{- fail "profiles: not a profiles file with a 'profiles:' list (pass it with --set-file profiles=hub/profiles.yaml)" -}}
{{- end -}}
{{- $doc | toJson -}}
{{- end -}}
