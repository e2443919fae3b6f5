"""Pure rendering: a ServingEndpoint (+ resolved secret data) -> the manifests of its children.

No I/O and no clock here: the same input always gives byte-identical manifests, so server-side apply of an
unchanged endpoint is a no-op. Children, all in the endpoint's namespace, labelled and owned by it:

- ``Secret`` ``modelgate-<name>-credentials`` holding every ``*Plaintext`` value under ``<entity>.<field>``;
- ``ConfigMap`` ``<child>`` with ``endpoint.yaml``: the manifest the proxy serves, where each ``*Plaintext``
  field is replaced by a ``{{secrets/<owned-secret>/<key>}}`` reference (so the ConfigMap holds no secret);
- ``Deployment`` ``<child>`` running ``modelgate serve`` with the ConfigMap and every referenced Secret mounted
  read-only, and a checksum of config + secret data in the pod template so that any change rolls the pods;
- ``Service`` ``<child>`` (port 80 -> the proxy's 8080);
- with ``spec.proxy.autoscaling`` / ``disruptionBudget``: ``HorizontalPodAutoscaler`` / ``PodDisruptionBudget``
  ``<child>`` (:mod:`.render_scaling`).

``<child>`` is ``modelgate-<name>``, shortened with a hash when that would exceed 63 characters.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from typing import Any

from modelgate_proxy.spec import API_VERSION, KIND, SecretRef, ServingEndpointSpec
from modelgate_proxy.spec.gateway import GuardrailJudge

from . import render_auth, render_judge
from .gateway_defaults import GatewayDefaults
from .proxy_telemetry import ProxyTelemetry, writes_tables
from .proxy_telemetry import apply as apply_telemetry
from .render_auth import AuthDefaults, EffectiveAuth
from .render_config import checksum, config_text, owned_secret_data
from .render_redis import rate_limit_args, redis_args, wire_redis
from .render_scaling import render_autoscaler, render_disruption_budget
from .secrets import SecretField, collect

Manifest = dict[str, Any]

GROUP_PREFIX = "serving.modelgate.io"
ENDPOINT_LABEL = f"{GROUP_PREFIX}/endpoint"
CHECKSUM_ANNOTATION = f"{GROUP_PREFIX}/config-checksum"
MANAGED_BY = "modelgate-operator"
CONFIG_KEY = "endpoint.yaml"
CONFIG_DIR = "/etc/modelgate"
SECRETS_DIR = f"{CONFIG_DIR}/secrets"
PROXY_PORT = 8080
SERVICE_PORT = 80
PROXY_UID = 65532
DRAIN_SECONDS = 5
"""On termination the pod first stays up this long, no longer Ready (its endpoint is marked terminating), so
Service routing and clients stop sending to it; then SIGTERM: the proxy finishes in-flight requests and exits."""
SHUTDOWN_GRACE_SECONDS = 30
"""Time for in-flight requests (streams included) after SIGTERM, before the kubelet kills the container."""


@dataclass(frozen=True, slots=True)
class ProxyDefaults:
    """What the operator uses when ``spec.proxy`` leaves it open."""

    image: str = "ghcr.io/modelgate/modelgate-proxy:0.1.0"
    image_pull_policy: str = "IfNotPresent"
    replicas: int = 1
    resources: dict[str, dict[str, str | int]] = field(
        default_factory=lambda: {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
    )
    cluster_domain: str = "cluster.local"
    telemetry: ProxyTelemetry | None = None  # tables, traces, workload identity (--proxy-telemetry)
    auth: AuthDefaults = field(default_factory=AuthDefaults)
    redis_secret: str | None = None
    """A Secret in each endpoint's namespace with the rate-limit Redis: key ``url`` (``redis://host:port``) and,
    unless ``redis_password_key`` is empty, the password. ``None``: in-process counters."""
    redis_password_key: str = "password"
    gateway: GatewayDefaults = field(default_factory=GatewayDefaults)
    judge: GuardrailJudge | None = None
    """The guardrail judge of endpoints whose spec names none (``--guardrail-judge``; :mod:`.render_judge`)."""


@dataclass(frozen=True, slots=True)
class Owner:
    """The ServingEndpoint the children belong to."""

    name: str
    namespace: str
    uid: str


@dataclass(frozen=True, slots=True)
class Children:
    secret: Manifest
    config_map: Manifest
    deployment: Manifest
    service: Manifest
    checksum: str
    auth: EffectiveAuth
    service_account: Manifest
    """The namespace's proxy ServiceAccount: shared, owned by no endpoint (applied before the children)."""
    api_keys_rbac: list[Manifest]
    """The Role and RoleBinding letting the proxy read the namespace's Secrets (API keys), or none."""
    scaling: tuple[Manifest, ...] = ()
    """The HorizontalPodAutoscaler and PodDisruptionBudget the spec asks for (:mod:`.render_scaling`)."""

    def in_apply_order(self) -> list[Manifest]:
        """Secret and ConfigMap before the Deployment that mounts them, the Service, the rest after."""
        return [self.secret, self.config_map, self.deployment, self.service, *self.api_keys_rbac, *self.scaling]


def _short_hash(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def child_name(endpoint: str) -> str:
    """Name of the Deployment, Service and ConfigMap: a DNS-1035 label of at most 63 characters."""
    name = f"modelgate-{endpoint}"
    if len(name) <= 63:
        return name
    return f"modelgate-{endpoint[:43]}-{_short_hash(endpoint)}"


def owned_secret_name(endpoint: str) -> str:
    return f"modelgate-{endpoint}-credentials"


def volume_name(secret_name: str) -> str:
    return f"secret-{_short_hash(secret_name, 12)}"


def selector_labels(endpoint: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "modelgate-proxy", "app.kubernetes.io/instance": endpoint}


def labels(endpoint: str) -> dict[str, str]:
    return {
        **selector_labels(endpoint),
        "app.kubernetes.io/component": "proxy",
        "app.kubernetes.io/part-of": "modelgate",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        ENDPOINT_LABEL: endpoint,
    }


def owner_references(owner: Owner) -> list[Manifest]:
    return [
        {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": owner.name,
            "uid": owner.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def _metadata(name: str, owner: Owner) -> Manifest:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels(owner.name),
        "ownerReferences": owner_references(owner),
    }


def endpoint_url(owner: Owner, defaults: ProxyDefaults) -> str:
    host = f"{child_name(owner.name)}.{owner.namespace}.svc.{defaults.cluster_domain}"
    return f"http://{host}/serving-endpoints/{owner.name}/invocations"


# ----------------------------------------------------------------------------------------------- config


def _set_path(root: Any, path: tuple[str | int, ...]) -> Any:
    node = root
    for part in path:
        node = node[part]
    return node


def proxy_manifest(owner: Owner, spec: ServingEndpointSpec, fields: list[SecretField]) -> Manifest:
    """The manifest the proxy serves: the spec with every plaintext moved behind an owned-Secret reference."""
    body = spec.to_json_dict()
    secret_name = owned_secret_name(owner.name)
    for f in fields:
        if f.plaintext is None:
            continue
        holder = _set_path(body, f.path)
        holder.pop(f.plaintext_alias, None)
        holder[f.ref_alias] = str(SecretRef(secret_name, f.owned_key))
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": owner.name, "namespace": owner.namespace},
        "spec": body,
    }


# ----------------------------------------------------------------------------------------------- children


def render_secret(owner: Owner, data: dict[str, str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(owned_secret_name(owner.name), owner),
        "type": "Opaque",
        "data": dict(sorted(data.items())),
    }


def render_config_map(owner: Owner, text: str, auth_text: str | None = None) -> Manifest:
    data = {CONFIG_KEY: text} if auth_text is None else {CONFIG_KEY: text, render_auth.AUTH_KEY: auth_text}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _metadata(child_name(owner.name), owner), "data": data}


def proxy_command() -> list[str]:
    return [
        "modelgate", "serve",
        "-f", f"{CONFIG_DIR}/{CONFIG_KEY}",
        "--secrets-dir", SECRETS_DIR,
        "--host", "0.0.0.0",
        "--port", str(PROXY_PORT),
    ]  # fmt: skip


def _mounted_secrets(owner: Owner, fields: list[SecretField]) -> dict[str, list[str]]:
    """Secret name -> the keys the proxy reads from it (only those are projected into the pod)."""
    keys: dict[str, set[str]] = {}
    for f in fields:
        if f.reference is not None:
            keys.setdefault(f.reference.name, set()).add(f.reference.key)
        elif f.plaintext is not None:
            keys.setdefault(owned_secret_name(owner.name), set()).add(f.owned_key)
    return {name: sorted(k) for name, k in sorted(keys.items())}


def render_deployment(
    owner: Owner,
    spec: ServingEndpointSpec,
    fields: list[SecretField],
    digest: str,
    defaults: ProxyDefaults,
    auth: EffectiveAuth | None = None,
) -> Manifest:
    proxy = spec.proxy
    replicas = proxy.replicas if proxy is not None and proxy.replicas is not None else defaults.replicas
    if proxy is not None and proxy.resources is not None:
        resources: Manifest = proxy.resources.model_dump(exclude_none=True, mode="json")
    else:
        resources = copy.deepcopy(defaults.resources)
    mounts: list[Manifest] = [
        {"name": "config", "mountPath": f"{CONFIG_DIR}/{CONFIG_KEY}", "subPath": CONFIG_KEY, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, not a shared /tmp
    ]
    auth = auth or render_auth.effective(spec, defaults.auth)
    items = [{"key": CONFIG_KEY, "path": CONFIG_KEY}]
    if auth.mode == "bearer":
        items.append({"key": render_auth.AUTH_KEY, "path": render_auth.AUTH_KEY})
        mounts.append({"name": "config", "mountPath": render_auth.AUTH_PATH, "subPath": render_auth.AUTH_KEY,
                       "readOnly": True})  # fmt: skip
    identity, id_volumes, id_mounts = render_auth.pod_identity(auth)
    mounts += id_mounts
    volumes: list[Manifest] = [
        {"name": "config", "configMap": {"name": child_name(owner.name), "items": items}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        *id_volumes,
    ]
    for secret_name, keys in _mounted_secrets(owner, fields).items():
        vol = volume_name(secret_name)
        mounts.append({"name": vol, "mountPath": f"{SECRETS_DIR}/{secret_name}", "readOnly": True})
        volumes.append(
            {
                "name": vol,
                "secret": {
                    "secretName": secret_name,
                    "items": [{"key": k, "path": k} for k in keys],
                    "defaultMode": 0o440,
                },
            }
        )
    container: Manifest = {
        "name": "proxy",
        "image": defaults.image,
        "imagePullPolicy": defaults.image_pull_policy,
        "command": proxy_command() + render_auth.auth_args(auth)
        + rate_limit_args(spec, replicas, defaults.redis_secret is not None, owner.namespace)
        + redis_args(defaults.redis_secret, defaults.redis_password_key),
        "ports": [{"name": "http", "containerPort": PROXY_PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "lifecycle": {"preStop": {"sleep": {"seconds": DRAIN_SECONDS}}},
        "resources": resources,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    wire_redis(container, volumes, defaults.redis_secret, defaults.redis_password_key)
    autoscaled = proxy is not None and proxy.autoscaling is not None
    deployment: Manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(child_name(owner.name), owner),
        "spec": {
            **({} if autoscaled else {"replicas": replicas}),  # an autoscaled Deployment's count is the HPA's
            "selector": {"matchLabels": selector_labels(owner.name)},
            "template": {
                "metadata": {"labels": labels(owner.name), "annotations": {CHECKSUM_ANNOTATION: digest}},
                "spec": {
                    **identity,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": DRAIN_SECONDS + SHUTDOWN_GRACE_SECONDS,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": PROXY_UID,
                        "runAsGroup": PROXY_UID,
                        "fsGroup": PROXY_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }
    if defaults.telemetry is not None:
        apply_telemetry(deployment, defaults.telemetry, owner.name, owner.namespace, writes_tables=writes_tables(spec),
                        own_resources=proxy is not None and proxy.resources is not None)
    return deployment


def render_service(owner: Owner) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(child_name(owner.name), owner),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(owner.name),
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def render(
    owner: Owner,
    spec: ServingEndpointSpec,
    resolved: dict[SecretRef, str],
    defaults: ProxyDefaults,
    fields: list[SecretField] | None = None,
    judge: render_judge.JudgeWiring | None = None,
) -> Children:
    """All four children. ``resolved`` maps each reference to its Secret's base64 value (for the checksum);
    ``judge`` what the guardrail judge needs (:mod:`.render_judge`)."""
    fields = collect(spec) if fields is None else fields
    judge = judge or render_judge.JudgeWiring()
    text = config_text(proxy_manifest(owner, spec, fields))
    auth = render_auth.effective(spec, defaults.auth)
    auth_doc = render_auth.auth_config(owner.namespace, auth)
    auth_text = None if auth_doc is None else config_text(auth_doc)
    owned = owned_secret_data(fields)
    digest = checksum(text + (auth_text or "") + " ".join(render_auth.auth_args(auth)) + judge.digest_part(), owned,
                      {**resolved, **judge.resolved})
    rbac_meta = _metadata(render_auth.api_keys_name(child_name(owner.name)), owner)
    rbac = [render_auth.api_keys_role(rbac_meta), render_auth.api_keys_role_binding(rbac_meta)]
    config_map = render_config_map(owner, text, auth_text)
    deployment = render_deployment(owner, spec, [*fields, *judge.fields], digest, defaults, auth)
    render_judge.apply(judge, config_map, deployment)
    return Children(
        secret=render_secret(owner, owned),
        config_map=config_map,
        deployment=deployment,
        service=render_service(owner),
        checksum=digest,
        auth=auth,
        service_account=render_auth.service_account(owner.namespace, _shared_labels()),
        api_keys_rbac=rbac if auth.reads_secrets else [],
        scaling=tuple(m for m in (
            render_autoscaler(child_name(owner.name), _metadata(child_name(owner.name), owner), spec),
            render_disruption_budget(_metadata(child_name(owner.name), owner), selector_labels(owner.name), spec),
        ) if m is not None),
    )


def _shared_labels() -> dict[str, str]:
    return {"app.kubernetes.io/part-of": "modelgate", "app.kubernetes.io/managed-by": MANAGED_BY,
            "app.kubernetes.io/component": "proxy"}  # fmt: skip
