{{/* The operator's rules: the same as operator/config/rbac/role.yaml (tests/chart checks they agree). */}}
{{- define "modelgate.namespacedRules" -}}
# ServingEndpoints: watch them, patch metadata (finalizer, kopf annotations), write status.
- apiGroups: [serving.modelgate.io]
  resources: [servingendpoints]
  verbs: [get, list, watch, patch]
- apiGroups: [serving.modelgate.io]
  resources: [servingendpoints/status]
  verbs: [patch]
# Children's ownerReferences set blockOwnerDeletion: OwnerReferencesPermissionEnforcement (on by default on
# OpenShift) allows that only to whoever may update the owner's finalizers.
- apiGroups: [serving.modelgate.io]
  resources: [servingendpoints/finalizers]
  verbs: [update]
# Secrets: read the referenced ones (watched, to reconcile on rotation); own one per endpoint.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, patch, delete]
# Children: server-side applied (create + patch), deleted with their endpoint, watched to repair drift.
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [get, list, watch, create, patch, delete]
# Deployments are also watched: their status drives ProxyAvailable.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
# The proxies' identity: one ServiceAccount per namespace, and per endpoint with API keys a Role + RoleBinding
# for reading the namespace's Secrets (RBAC lets the operator grant only what it holds itself).
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, create, patch, delete]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, create, patch, delete]
# spec.proxy.autoscaling and spec.proxy.disruptionBudget: owned like the other children.
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
# The workspace gateway's optional Ingress (gateway.ingress; docs/workspace-gateway.md).
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, create, patch, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}

{{/* Only with more than one replica (kopf peering: one active replica). */}}
{{- define "modelgate.peeringRules" -}}
- apiGroups: [kopf.dev]
  resources: [{{ .resource }}]
  verbs: [get, list, watch, patch]
{{- end }}


{{/* The operator's only cluster-scoped rights (any scope): keep the subjects of the one proxy-reviews binding. */}}
{{- define "modelgate.reviewsBindingRules" -}}
- apiGroups: [rbac.authorization.k8s.io]
  resources: [clusterrolebindings]
  resourceNames: [{{ include "modelgate.reviewsName" . }}]
  verbs: [get, update, patch]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [clusterroles]
  resourceNames: [{{ include "modelgate.reviewsName" . }}]
  verbs: [bind]
{{- if .Values.gateway.enabled }}
# The workspace gateways' ClusterRole, bound in each gateway's namespace to its ServiceAccount.
- apiGroups: [rbac.authorization.k8s.io]
  resources: [clusterroles]
  resourceNames: [{{ include "modelgate.gatewayRoleName" . }}]
  verbs: [bind]
{{- end }}
{{- end }}

{{/* The proxies' reviews ClusterRole and its binding (cluster-scoped: named after the release namespace too). */}}
{{- define "modelgate.reviewsName" -}}
{{ include "modelgate.fullname" . }}-{{ .Release.Namespace }}-proxy-reviews
{{- end }}

{{/* The workspace gateways' ClusterRole (charts/modelgate/files/modelgate-gateway-clusterrole.yaml's rules). */}}
{{- define "modelgate.gatewayRoleName" -}}
{{ include "modelgate.fullname" . }}-{{ .Release.Namespace }}-gateway
{{- end }}
