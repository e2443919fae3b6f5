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
