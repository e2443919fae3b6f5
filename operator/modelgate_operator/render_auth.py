"""Pure rendering of an endpoint's authentication: the proxy's ``AuthConfig``, its flags, its identity.

The effective settings are the endpoint's ``spec.proxy.authentication`` over the operator's
:class:`AuthDefaults` (the chart's ``proxy.authentication`` values), field by field. What is rendered:

- ``bearer``: ``auth.yaml`` (an ``AuthConfig``: Kubernetes tokens for the audience through TokenReview, the
  namespace's API-key Secrets when enabled, the OIDC issuer when set; ``authorize: rbac``, a
  SubjectAccessReview for ``query`` on the endpoint) in the proxy's ConfigMap (it holds no secret), and
  ``--auth-config``; the pod runs as the namespace's :data:`SERVICE_ACCOUNT` with a projected token for the
  API server (the default audience) at the standard path;
- ``trusted-header``: ``--identity-header``/``--groups-header``/``--service-principal-header``;
- ``none``: ``--no-auth``.

With API keys, the endpoint also owns a Role granting :data:`SERVICE_ACCOUNT` ``get``/``list``/``watch`` on
Secrets of its namespace, and a RoleBinding (RBAC cannot narrow that to the labelled Secrets: see
docs/authentication.md). The ServiceAccount itself is shared by the namespace's proxies and owned by no endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelgate_proxy.spec import AuthenticationMode, AuthenticationSettings, OidcProvider, ServingEndpointSpec

Manifest = dict[str, Any]

SERVICE_ACCOUNT = "modelgate-proxy"
"""The ServiceAccount every proxy pod of a namespace runs as."""
REVIEWS_CLUSTER_ROLE = "modelgate-proxy-reviews"
"""``create`` on tokenreviews and subjectaccessreviews (the chart ships it); bound to every proxy ServiceAccount."""
AUTH_KEY = "auth.yaml"
AUTH_PATH = f"/etc/modelgate/{AUTH_KEY}"
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
"""Where identity/kubeapi.py reads the pod's token, CA and namespace."""
TOKEN_SECONDS = 3600
DEFAULT_AUDIENCE = "modelgate.io/proxy"


@dataclass(frozen=True, slots=True)
class AuthDefaults:
    """The operator's default for every endpoint (flags the chart sets from ``proxy.authentication``)."""

    mode: AuthenticationMode = "bearer"
    audience: str = DEFAULT_AUDIENCE
    api_keys: bool = True
    oidc: OidcProvider | None = None
    user_header: str | None = None
    groups_header: str | None = None
    service_principal_header: str | None = None
    reviews_binding: str | None = REVIEWS_CLUSTER_ROLE
    api_server: str | None = None
    """The API server URL the proxies call (default: ``KUBERNETES_SERVICE_HOST``/``PORT`` in the pod), for clusters
    where the ``kubernetes`` Service is not routed (no kube-proxy)."""
    """The ClusterRoleBinding (of :data:`REVIEWS_CLUSTER_ROLE`) whose subjects the operator keeps; None: not
    managed (someone else binds the proxy ServiceAccounts)."""


@dataclass(frozen=True, slots=True)
class EffectiveAuth:
    """What one endpoint's proxy is configured with."""

    mode: AuthenticationMode
    audience: str
    api_keys: bool
    oidc: OidcProvider | None
    user_header: str | None
    groups_header: str | None
    service_principal_header: str | None
    api_server: str | None = None

    @property
    def open(self) -> bool:
        return self.mode == "none"

    @property
    def uses_api_server(self) -> bool:
        """The proxy calls TokenReview/SubjectAccessReview (and watches API-key Secrets)."""
        return self.mode == "bearer"

    @property
    def reads_secrets(self) -> bool:
        return self.mode == "bearer" and self.api_keys


def effective(spec: ServingEndpointSpec, defaults: AuthDefaults) -> EffectiveAuth:
    own = (spec.proxy.authentication if spec.proxy is not None else None) or AuthenticationSettings()
    headers = own.trusted_header
    return EffectiveAuth(
        mode=own.mode or defaults.mode,
        audience=own.audience or defaults.audience,
        api_keys=defaults.api_keys if own.api_keys is None else own.api_keys,
        oidc=own.oidc or defaults.oidc,
        user_header=(headers.user_header if headers else None) or defaults.user_header,
        groups_header=(headers.groups_header if headers else None) or defaults.groups_header,
        service_principal_header=(headers.service_principal_header if headers else None)
        or defaults.service_principal_header,
        api_server=defaults.api_server,
    )


def problems(auth: EffectiveAuth) -> list[str]:
    """Settings that cannot work (reported as ConfigValid=False, like the other configuration checks)."""
    if auth.mode == "trusted-header" and not (auth.user_header or auth.service_principal_header):
        return ["spec.proxy.authentication.trustedHeader: trusted-header mode needs userHeader or "
                "servicePrincipalHeader (here or in the operator's defaults)"]  # fmt: skip
    return []


def auth_config(namespace: str, auth: EffectiveAuth) -> Manifest | None:
    """The proxy's ``AuthConfig`` (identity/auth_config.py) for bearer mode; None for the other modes."""
    if auth.mode != "bearer":
        return None
    kubernetes = {"audience": auth.audience} if auth.api_server is None else {"audience": auth.audience,
                                                                               "server": auth.api_server}  # fmt: skip
    config: Manifest = {"mode": "bearer", "authorize": "rbac", "kubernetes": kubernetes}
    if auth.api_keys:
        config["api_key_secrets"] = {"namespace": namespace}
    if auth.oidc is not None:
        o = auth.oidc
        oidc: Manifest = {"issuer": o.issuer, "audience": o.audience}
        for key, value in (("username_claim", o.username_claim), ("groups_claim", o.groups_claim),
                           ("username_prefix", o.username_prefix), ("groups_prefix", o.groups_prefix)):  # fmt: skip
            if value is not None:
                oidc[key] = value
        config["oidc"] = oidc
    return config


def auth_args(auth: EffectiveAuth) -> list[str]:
    """The ``modelgate serve`` flags of the mode."""
    if auth.mode == "none":
        return ["--no-auth"]
    if auth.mode == "bearer":
        return ["--auth-config", AUTH_PATH]
    args: list[str] = []
    for flag, value in (("--identity-header", auth.user_header), ("--groups-header", auth.groups_header),
                        ("--service-principal-header", auth.service_principal_header)):  # fmt: skip
        if value:
            args += [flag, value]
    return args


def pod_identity(auth: EffectiveAuth) -> tuple[Manifest, list[Manifest], list[Manifest]]:
    """Pod-spec fields, volumes and mounts: the ServiceAccount, and in bearer mode its token for the API server
    (audience: the API server's own), the cluster CA and the namespace, where a pod's automounted token would be."""
    pod: Manifest = {"serviceAccountName": SERVICE_ACCOUNT, "automountServiceAccountToken": False}
    if not auth.uses_api_server:
        return pod, [], []
    volume = {
        "name": "kube-api-access",
        "projected": {
            "defaultMode": 0o444,
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": TOKEN_SECONDS}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                              "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    }  # fmt: skip
    mount = {"name": "kube-api-access", "mountPath": TOKEN_DIR, "readOnly": True}
    return pod, [volume], [mount]


def api_keys_name(child: str) -> str:
    """The Role and RoleBinding of an endpoint whose proxy reads API-key Secrets."""
    return f"{child[:54]}-api-keys"


def service_account(namespace: str, labels: dict[str, str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace, "labels": labels},
        "automountServiceAccountToken": False,
    }


def api_keys_role(metadata: Manifest) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata,
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}],
    }


def api_keys_role_binding(metadata: Manifest) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": metadata["name"]},
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": metadata["namespace"]}],
    }


def status(auth: EffectiveAuth) -> Manifest:
    """``status.authentication``."""
    bearer = auth.mode == "bearer"
    return {
        "mode": auth.mode,
        "open": auth.open,
        "audience": auth.audience if bearer else None,
        "apiKeys": auth.api_keys if bearer else None,
        "oidcIssuer": auth.oidc.issuer if bearer and auth.oidc is not None else None,
    }
