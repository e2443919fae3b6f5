"""Pure rendering of a namespace's workspace gateway (docs/workspace-gateway.md).

One gateway per namespace that has ServingEndpoints: a ``modelgate serve --management-namespace <ns>`` process
that serves every endpoint of the namespace itself (the watch of ``server/management/serving.py``) and the
Databricks management API, on one base URL. Objects, all named :data:`NAME` in the namespace:

- ``ServiceAccount``: the gateway's own identity (not the proxies' ``modelgate-proxy``);
- ``RoleBinding`` of the ClusterRole ``modelgate-gateway`` (ServingEndpoints, ``create`` on Secrets) to it; its
  TokenReview/SubjectAccessReview rights come from the reviews ClusterRoleBinding (:mod:`.reviews_binding`);
- ``ConfigMap`` with ``auth.yaml``: bearer, Kubernetes tokens (+ OIDC when the operator's default sets one),
  ``authorize: rbac``; no API keys (they would need ``get``/``list`` on every Secret of the namespace);
- ``Deployment`` with one projected volume holding exactly the Secret keys the namespace's endpoints reference,
  at ``<secrets-dir>/<secret>/<key>``, and a checksum of their values: a rotation or a new reference rolls it;
- ``Service`` (port 80) and, with ``--gateway-ingress``'s ``enabled``, an ``Ingress``.

Every object carries a (non-controller) ownerReference to each endpoint of the namespace, so a garbage
collector removes them with the last one; the operator also deletes them itself then (:mod:`.gateway_sync`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from modelgate_proxy.spec import API_VERSION, KIND

from . import render_auth
from .admissionpolicy import GATEWAY_ACCOUNT
from .gateway_defaults import GatewayDefaults
from .render import (
    CHECKSUM_ANNOTATION,
    CONFIG_DIR,
    DRAIN_SECONDS,
    MANAGED_BY,
    PROXY_PORT,
    PROXY_UID,
    SECRETS_DIR,
    SERVICE_PORT,
    SHUTDOWN_GRACE_SECONDS,
    Owner,
    ProxyDefaults,
)
from .render_config import config_text

Manifest = dict[str, Any]
NAME = GATEWAY_ACCOUNT
"""Every object's name, the ServiceAccount's too (which the Secret-reference policy exempts in its namespace)."""
COMPONENT = "gateway"
AUTH_PATH = f"{CONFIG_DIR}/{render_auth.AUTH_KEY}"
KINDS = ("ServiceAccount", "RoleBinding", "ConfigMap", "Deployment", "Service", "Ingress")
"""Every kind the gateway may have, in apply order (the Ingress only when enabled)."""


def selector_labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": "modelgate-gateway", "app.kubernetes.io/instance": NAME}


def labels() -> dict[str, str]:
    return {**selector_labels(), "app.kubernetes.io/component": COMPONENT, "app.kubernetes.io/part-of": "modelgate",
            "app.kubernetes.io/managed-by": MANAGED_BY}  # fmt: skip


def is_ours(live: Mapping[str, Any]) -> bool:
    """An object named :data:`NAME` that this operator rendered (anything else of that name is left alone)."""
    found = (live.get("metadata") or {}).get("labels") or {}
    return found.get("app.kubernetes.io/managed-by") == MANAGED_BY and found.get("app.kubernetes.io/component") == COMPONENT


def _metadata(namespace: str, owners: Sequence[Owner]) -> Manifest:
    refs = [{"apiVersion": API_VERSION, "kind": KIND, "name": o.name, "uid": o.uid, "controller": False,
             "blockOwnerDeletion": False} for o in sorted(owners, key=lambda o: o.name)]  # fmt: skip
    return {"name": NAME, "namespace": namespace, "labels": labels(), "ownerReferences": refs}


def auth_config(namespace: str, defaults: ProxyDefaults) -> Manifest:
    a = defaults.auth
    auth = render_auth.EffectiveAuth(mode="bearer", audience=a.audience, api_keys=False, oidc=a.oidc, user_header=None,
                                     groups_header=None, service_principal_header=None, api_server=a.api_server)  # fmt: skip
    config = render_auth.auth_config(namespace, auth)
    assert config is not None  # bearer always has one
    return config


def command(namespace: str, defaults: ProxyDefaults, gateway: GatewayDefaults) -> list[str]:
    args = ["modelgate", "serve", "--management-namespace", namespace, "--auth-config", AUTH_PATH,
            "--secrets-dir", SECRETS_DIR, "--host", "0.0.0.0", "--port", str(PROXY_PORT)]  # fmt: skip
    if defaults.auth.api_server is not None:
        args += ["--management-server", defaults.auth.api_server]
    if gateway.refuse_gitops:
        args.append("--management-refuse-gitops")
    return args


def _secrets_volume(references: Mapping[str, Sequence[str]]) -> Manifest:
    sources = [{"secret": {"name": name, "optional": True, "items": [{"key": k, "path": f"{name}/{k}"} for k in keys]}}
               for name, keys in sorted(references.items())]  # fmt: skip
    return {"name": "secrets", "projected": {"defaultMode": 0o440, "sources": sources}}


def render_deployment(namespace: str, owners: Sequence[Owner], references: Mapping[str, Sequence[str]], digest: str,
                      defaults: ProxyDefaults, gateway: GatewayDefaults) -> Manifest:  # fmt: skip
    pod, id_volumes, id_mounts = render_auth.pod_identity(auth_effective_bearer())
    mounts: list[Manifest] = [
        {"name": "config", "mountPath": AUTH_PATH, "subPath": render_auth.AUTH_KEY, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, not a shared /tmp
        {"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True},
        *id_mounts,
    ]
    volumes: list[Manifest] = [
        {"name": "config", "configMap": {"name": NAME, "items": [{"key": render_auth.AUTH_KEY,
                                                                  "path": render_auth.AUTH_KEY}]}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        _secrets_volume(references),
        *id_volumes,
    ]  # fmt: skip
    container: Manifest = {
        "name": "gateway",
        "image": defaults.image,
        "imagePullPolicy": defaults.image_pull_policy,
        "command": command(namespace, defaults, gateway),
        "ports": [{"name": "http", "containerPort": PROXY_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10, "failureThreshold": 3},
        "lifecycle": {"preStop": {"sleep": {"seconds": DRAIN_SECONDS}}},
        "resources": copy.deepcopy(gateway.resources),
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": mounts,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(namespace, owners),
        "spec": {
            "replicas": gateway.replicas,
            "selector": {"matchLabels": selector_labels()},
            "template": {
                "metadata": {"labels": labels(), "annotations": {CHECKSUM_ANNOTATION: digest}},
                "spec": {
                    **pod,
                    "serviceAccountName": NAME,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": DRAIN_SECONDS + SHUTDOWN_GRACE_SECONDS,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": PROXY_UID, "runAsGroup": PROXY_UID,
                                        "fsGroup": PROXY_UID, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def auth_effective_bearer() -> render_auth.EffectiveAuth:
    """Only for :func:`render_auth.pod_identity`: bearer mode mounts the API server token, CA and namespace."""
    return render_auth.EffectiveAuth(mode="bearer", audience="", api_keys=False, oidc=None, user_header=None,
                                     groups_header=None, service_principal_header=None)  # fmt: skip


def render_ingress(namespace: str, owners: Sequence[Owner], gateway: GatewayDefaults) -> Manifest | None:
    ing = gateway.ingress
    if not ing.enabled:
        return None
    host = ing.host.replace("{namespace}", namespace)
    rule: Manifest = {"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
        "service": {"name": NAME, "port": {"name": "http"}}}}]}}  # fmt: skip
    if host:
        rule["host"] = host
    metadata = _metadata(namespace, owners)
    if ing.annotations:
        metadata["annotations"] = dict(sorted(ing.annotations.items()))
    spec: Manifest = {"rules": [rule]}
    if ing.class_name:
        spec["ingressClassName"] = ing.class_name
    if ing.tls_secret:
        spec["tls"] = [{"secretName": ing.tls_secret, **({"hosts": [host]} if host else {})}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": metadata, "spec": spec}


def render(namespace: str, owners: Sequence[Owner], references: Mapping[str, Sequence[str]], digest: str,
           defaults: ProxyDefaults, gateway: GatewayDefaults) -> list[Manifest]:  # fmt: skip
    """The gateway's objects in apply order (:data:`KINDS`; no Ingress unless enabled)."""
    meta = _metadata(namespace, owners)
    rbac = "rbac.authorization.k8s.io"
    objects: list[Manifest | None] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta, "automountServiceAccountToken": False},
        {"apiVersion": f"{rbac}/v1", "kind": "RoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": gateway.cluster_role},
         "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
         "data": {render_auth.AUTH_KEY: config_text(auth_config(namespace, defaults))}},
        render_deployment(namespace, owners, references, digest, defaults, gateway),
        {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": {
            "type": "ClusterIP", "selector": selector_labels(),
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}]}},
        render_ingress(namespace, owners, gateway),
    ]  # fmt: skip
    return [copy.deepcopy(o) for o in objects if o is not None]


def url(namespace: str, defaults: ProxyDefaults) -> str:
    """The in-cluster workspace URL (``DATABRICKS_HOST``)."""
    return f"http://{NAME}.{namespace}.svc.{defaults.cluster_domain}"


