"""The one module that talks to the Kubernetes API (kopf does its own watching).

Writes of children are server-side applies under a single field manager, forced (the operator owns those
fields); a re-apply of identical content is a no-op on the server (resourceVersion unchanged). Errors are
re-raised as :class:`KubeError`, whose message never carries a server message about a Secret (an API
server may echo invalid input, and Secret input is credentials).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from typing import Any

import httpx2
from lightkube import ApiError, AsyncClient
from lightkube.config.client_adapter import verify_cluster
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.resource import NamespacedResource
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler
from lightkube.resources.core_v1 import ConfigMap, Event, Secret, Service, ServiceAccount
from lightkube.resources.networking_v1 import Ingress
from lightkube.resources.policy_v1 import PodDisruptionBudget
from lightkube.resources.rbac_authorization_v1 import Role, RoleBinding
from lightkube.types import PatchType

from modelgate_proxy.spec import GROUP, KIND, PLURAL, VERSION

from . import kubehttp
from .conditions import ProxyState, proxy_state_from
from .secretcache import digests

FIELD_MANAGER = "modelgate-operator"
"""The field manager of every write (applies, status patches, Events): without one the API server records the
client library's User-Agent ("Python" for aiohttp) in managedFields."""
WRITE_PARAMS = {"fieldManager": FIELD_MANAGER}
POOL_SIZE = 64
COMPONENT = "modelgate-operator"

ServingEndpoint = create_namespaced_resource(GROUP, VERSION, KIND, PLURAL)

KINDS: dict[str, type[NamespacedResource]] = {
    "Secret": Secret,
    "ConfigMap": ConfigMap,
    "Deployment": Deployment,
    "Service": Service,
    "ServiceAccount": ServiceAccount,
    "Role": Role,
    "RoleBinding": RoleBinding,
    "HorizontalPodAutoscaler": HorizontalPodAutoscaler,
    "PodDisruptionBudget": PodDisruptionBudget,
    "Ingress": Ingress,
}
PLURALS = {"Secret": "secrets", "ConfigMap": "configmaps", "Deployment": "deployments", "Service": "services",
           "ServiceAccount": "serviceaccounts", "Role": "roles", "RoleBinding": "rolebindings",
           "HorizontalPodAutoscaler": "horizontalpodautoscalers", "PodDisruptionBudget": "poddisruptionbudgets",
           "Ingress": "ingresses"}  # fmt: skip
API_VERSIONS = {"Deployment": "apps/v1", "Role": "rbac.authorization.k8s.io/v1",
                "RoleBinding": "rbac.authorization.k8s.io/v1", "HorizontalPodAutoscaler": "autoscaling/v2",
                "PodDisruptionBudget": "policy/v1", "Ingress": "networking.k8s.io/v1"}  # fmt: skip
"""Kinds outside the core group (every other kind here is ``v1``)."""


class KubeError(Exception):
    """An API call failed; ``code`` is the HTTP status (0 when the server was unreachable)."""

    def __init__(
        self, action: str, kind: str, namespace: str, name: str, code: int, detail: str, reason: str = ""
    ) -> None:
        self.code = code
        self.reason = reason
        """The API server's reason (``Invalid``, ``Forbidden``, ``Conflict``...), "" when there was no answer."""
        self.detail = detail
        """The API server's message (only its reason for a Secret: the message may echo a value)."""
        super().__init__(f"{action} {kind} {namespace}/{name} failed ({code}): {detail}")


def _error(action: str, kind: str, namespace: str, name: str, exc: Exception) -> KubeError:
    if isinstance(exc, ApiError):
        code = int(exc.status.code or 0)
        reason = str(exc.status.reason or "")
        detail = reason if kind == "Secret" else str(exc.status.message or reason)
        return KubeError(action, kind, namespace, name, code, detail, reason)
    return KubeError(action, kind, namespace, name, 0, type(exc).__name__)


def _http_error(action: str, kind: str, namespace: str, name: str, exc: kubehttp.HttpError) -> KubeError:
    if exc.code == 0:
        return KubeError(action, kind, namespace, name, 0, exc.reason)
    detail = exc.reason if kind == "Secret" else (exc.message or exc.reason)
    return KubeError(action, kind, namespace, name, exc.code, detail, exc.reason)


class Kube:
    """Async API access for the reconciler. Children's applies and status patches go over ``fast`` (aiohttp,
    :mod:`.kubehttp`) when the kubeconfig allows it, everything else over lightkube."""

    def __init__(self, client: AsyncClient, fast: kubehttp.FastPath | None = None) -> None:
        self.client = client
        self.fast = fast

    @classmethod
    def from_env(cls, timeout: float = 30.0, connections: int = POOL_SIZE) -> Kube:
        """In-cluster service account, else ``$KUBECONFIG`` / ``~/.kube/config``.

        The connection pool keeps up to ``connections`` connections alive (httpx keeps only 20 by default, so
        a burst of concurrent reconciles would close and re-open TLS connections: a handshake per request)."""
        config = KubeConfig.from_env().get()
        if config is None or config.user is None:
            raise KubeError("connect to", "cluster", "-", "-", 0, "no usable context in the kubeconfig")
        tls = verify_cluster(config.cluster, config.user, config.abs_file)
        limits = httpx2.Limits(
            max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=60.0
        )
        transport = httpx2.AsyncHTTPTransport(verify=tls, limits=limits)
        client = AsyncClient(
            config, field_manager=FIELD_MANAGER, timeout=httpx2.Timeout(timeout), transport=transport
        )
        return cls(client, kubehttp.from_config(config, tls, connections=connections, timeout=timeout))

    async def close(self) -> None:
        if self.fast is not None:
            await self.fast.close()
        await self.client.close()

    # ------------------------------------------------------------------------------------------- children
    async def apply(self, manifest: Mapping[str, Any], uid: str | None = None) -> dict[str, Any]:
        """Server-side apply; returns the object as the server now has it. With ``uid``, only onto the object with
        that uid (the API server answers 409 when there is none, 422 when the object has another uid)."""
        kind = manifest["kind"]
        if uid is not None:
            manifest = {**manifest, "metadata": {**manifest["metadata"], "uid": uid}}
        meta = manifest["metadata"]
        if self.fast is not None:
            path = kubehttp.object_path(manifest["apiVersion"], PLURALS[kind], meta["namespace"], meta["name"])
            params = {**WRITE_PARAMS, "force": "true"}
            try:
                return await self.fast.patch(path, manifest, PatchType.APPLY.value, params)
            except kubehttp.HttpError as exc:
                raise _http_error("apply", kind, meta["namespace"], meta["name"], exc) from None
        try:
            obj = await self.client.patch(
                KINDS[kind],
                meta["name"],
                dict(manifest),
                namespace=meta["namespace"],
                patch_type=PatchType.APPLY,
                field_manager=FIELD_MANAGER,
                force=True,
            )
        except (ApiError, httpx2.HTTPError) as exc:
            raise _error("apply", kind, meta["namespace"], meta["name"], exc) from None
        return dict(obj.to_dict())  # type: ignore[attr-defined]

    async def get_child(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object's ``metadata`` (as ``{"metadata": ...}``; a Secret's data is not kept), None when absent."""
        try:
            obj = await self.client.get(KINDS[kind], name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise _error("get", kind, namespace, name, exc) from None
        except httpx2.HTTPError as exc:
            raise _error("get", kind, namespace, name, exc) from None
        meta = obj.to_dict().get("metadata") or {}  # type: ignore[attr-defined]
        return {"metadata": {k: v for k, v in meta.items() if k != "managedFields"}}

    async def delete(self, kind: str, namespace: str, name: str, uid: str | None = None) -> bool:
        """Delete (with ``uid``: only the object with that uid); False when it was already gone."""
        if uid is not None and self.fast is not None:
            path = kubehttp.object_path(API_VERSIONS.get(kind, "v1"), PLURALS[kind], namespace, name)
            body = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": uid}}
            try:
                await self.fast.request("DELETE", path, body, "application/json")
            except kubehttp.HttpError as exc:
                if exc.code in (404, 409):  # gone, or replaced by another object since it was checked
                    return False
                raise _http_error("delete", kind, namespace, name, exc) from None
            return True
        try:
            await self.client.delete(KINDS[kind], name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code == 404:
                return False
            raise _error("delete", kind, namespace, name, exc) from None
        except httpx2.HTTPError as exc:
            raise _error("delete", kind, namespace, name, exc) from None
        return True

    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's keys with the digests of their values (:func:`.secretcache.digests`), or None when there is
        no such Secret."""
        try:
            secret = await self.client.get(Secret, name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise _error("get", "Secret", namespace, name, exc) from None
        except httpx2.HTTPError as exc:
            raise _error("get", "Secret", namespace, name, exc) from None
        return digests(secret.data or {})

    async def secret_labels(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's labels, or None when there is no such Secret."""
        meta = await self.get_child("Secret", namespace, name)
        return None if meta is None else dict(meta["metadata"].get("labels") or {})

    async def proxy_state(self, namespace: str, name: str) -> ProxyState:
        try:
            dep = await self.client.get(Deployment, name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code == 404:
                return proxy_state_from(None)
            raise _error("get", "Deployment", namespace, name, exc) from None
        except httpx2.HTTPError as exc:
            raise _error("get", "Deployment", namespace, name, exc) from None
        return proxy_state_from(dep.to_dict())

    # ------------------------------------------------------------------------------------------- endpoint
    async def get_endpoint(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = await self.client.get(ServingEndpoint, name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise _error("get", KIND, namespace, name, exc) from None
        except httpx2.HTTPError as exc:
            raise _error("get", KIND, namespace, name, exc) from None
        return dict(obj.to_dict())  # type: ignore[no-untyped-call]

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Merge-patch ``status`` on the status subresource (None values remove fields)."""
        if self.fast is not None:
            path = kubehttp.object_path(f"{GROUP}/{VERSION}", PLURAL, namespace, name, "status")
            try:
                await self.fast.patch(path, {"status": dict(status)}, PatchType.MERGE.value, WRITE_PARAMS)
            except kubehttp.HttpError as exc:
                if exc.code == 404:
                    return
                raise _http_error("patch status of", KIND, namespace, name, exc) from None
            return
        try:
            await self.client.patch(
                ServingEndpoint.Status,
                name,
                {"status": dict(status)},
                namespace=namespace,
                patch_type=PatchType.MERGE,
                field_manager=FIELD_MANAGER,
            )
        except ApiError as exc:
            if exc.status.code == 404:
                return
            raise _error("patch status of", KIND, namespace, name, exc) from None
        except httpx2.HTTPError as exc:
            raise _error("patch status of", KIND, namespace, name, exc) from None

    async def post_event(
        self, involved: Mapping[str, Any], *, type_: str, reason: str, message: str, now: datetime.datetime
    ) -> None:
        """Record an Event about the endpoint. Best effort: a failure is reported to the caller as KubeError."""
        meta = involved["metadata"]
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        suffix = os.urandom(6).hex()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{suffix}", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind", KIND),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": COMPONENT,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            await self.client.create(Event.from_dict(event), field_manager=FIELD_MANAGER)  # type: ignore[call-overload]
        except (ApiError, httpx2.HTTPError) as exc:
            raise _error("create", "Event", meta["namespace"], meta["name"], exc) from None
