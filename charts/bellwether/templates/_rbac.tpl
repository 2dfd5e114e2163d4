{{/*
The API calls the controller makes, as RBAC rules: exactly the verbs it uses and nothing more.
tests/chart/rendered.rs checks the rendered rules against the calls in src/controller.
*/}}

{{/* Namespaced resources: granted cluster-wide, or by a Role in watchNamespace. */}}
{{- define "bellwether.rules.namespaced" -}}
- apiGroups: ["bellwether.dev"]
  resources: ["rollouts"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["bellwether.dev"]
  resources: ["rollouts/status"]
  verbs: ["update"]
- apiGroups: ["bellwether.dev"]
  resources: ["analysisruns"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["bellwether.dev"]
  resources: ["analysisruns/status"]
  verbs: ["update"]
- apiGroups: ["bellwether.dev"]
  resources: ["analysistemplates"]
  verbs: ["list", "watch"]
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["list", "watch", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["list", "watch", "patch"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes", "grpcroutes"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: [""]
  resources: ["configmaps"]
  resourceNames: ["bellwether-notifications"]
  verbs: ["list", "watch"]
{{- if .Values.jobMetrics }}
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "create", "delete"]
{{- end }}
{{- end -}}

{{/* Cluster-scoped resources: always a ClusterRole, since a Role cannot grant them. */}}
{{- define "bellwether.rules.cluster" -}}
- apiGroups: ["bellwether.dev"]
  resources: ["clusteranalysistemplates"]
  verbs: ["list", "watch"]
{{- end -}}

{{/* Leader election and sharding, in the release namespace: list to see the sharding members,
delete for members long gone. */}}
{{- define "bellwether.rules.leases" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "list", "create", "patch", "delete"]
{{- end -}}

{{/* The alert receiver's credentials: get on its one Secret, by name, in the release namespace. */}}
{{- define "bellwether.rules.alertsAuthSecret" -}}
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: [{{ .Values.alerts.authSecret | quote }}]
  verbs: ["get"]
{{- end -}}

{{/* The Secrets of readableSecrets in one namespace, by name; the context is the list of names. */}}
{{- define "bellwether.rules.readableSecrets" -}}
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: {{ toJson . }}
  verbs: ["get"]
{{- end -}}
