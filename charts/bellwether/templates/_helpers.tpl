{{/* The release's full name, at most 63 characters. */}}
{{- define "bellwether.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "bellwether.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "bellwether.labels" -}}
{{ include "bellwether.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "bellwether.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "bellwether.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* "true" when the controller campaigns for a Lease: more than one replica, or asked to. */}}
{{- define "bellwether.sharded" -}}
{{- if gt (int .Values.sharding.replicas) 0 -}}true{{- end -}}
{{- end -}}

{{- define "bellwether.leaderElect" -}}
{{- if and (not (include "bellwether.sharded" .)) (or (gt (int .Values.replicas) 1) .Values.leaderElection.enabled) -}}true{{- end -}}
{{- end -}}
