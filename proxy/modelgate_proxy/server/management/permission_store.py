"""The permission Roles and RoleBindings of endpoints (:mod:`.permissions`) in the API server, written with the
gateway's ServiceAccount.

The API server's answers are mapped here: 409 on an update -> ``RESOURCE_CONFLICT`` (changed concurrently),
400/422 -> ``INVALID_PARAMETER_VALUE`` with its message, 401/403 -> 503 naming the object (the gateway's own
ServiceAccount lacks a right, or RBAC's escalation check refused it: the install's problem, not the caller's; the
API server's message says which rule). A namespace's RoleBindings are read in pages of :data:`PAGE`, at most
:data:`MAX_BINDINGS` (the rest is not read for the inherited permissions).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from ...errors import BadRequest, GatewayError, IdentityUnavailable, ResourceConflict
from ...stages.identity.kubeapi import KubeApi
from .permissions import OWNER_UID_LABEL, RBAC_GROUP

log = logging.getLogger("modelgate.management")

PAGE = 100
MAX_BINDINGS = 500
_MESSAGE_MAX = 1000


def rbac_path(namespace: str, kind: str, name: str | None = None) -> str:
    base = f"/apis/{RBAC_GROUP}/v1/namespaces/{namespace}/{kind.lower()}s"
    return base if name is None else f"{base}/{quote(name, safe='')}"


class PermissionStore:
    def __init__(self, api: KubeApi, namespace: str) -> None:
        self.api = api
        self.namespace = namespace

    async def managed_bindings(self, uid: str) -> list[dict[str, Any]]:
        """The permission RoleBindings of the endpoint with this uid."""
        selector = quote(f"{OWNER_UID_LABEL}={uid}", safe="")
        status, page = await self.api.call("GET", rbac_path(self.namespace, "RoleBinding") + f"?labelSelector={selector}",
                                           "RoleBinding list")
        _raise_for(status, page, "RoleBinding list")
        return [i for i in page.get("items") or [] if isinstance(i, dict)]

    async def all_bindings(self) -> list[dict[str, Any]]:
        """The namespace's RoleBindings, at most :data:`MAX_BINDINGS`."""
        items: list[dict[str, Any]] = []
        token = ""
        while len(items) < MAX_BINDINGS:
            query = f"?limit={PAGE}" + (f"&continue={quote(token, safe='')}" if token else "")
            status, page = await self.api.call("GET", rbac_path(self.namespace, "RoleBinding") + query,
                                               "RoleBinding list")
            _raise_for(status, page, "RoleBinding list")
            items.extend(i for i in page.get("items") or [] if isinstance(i, dict))
            token = str((page.get("metadata") or {}).get("continue") or "")
            if not token:
                break
        return items[:MAX_BINDINGS]

    async def put(self, obj: dict[str, Any]) -> None:
        """Create ``obj`` (a Role or RoleBinding), or replace the one of that name (rules or subjects, labels,
        owner) at the resourceVersion it is read at."""
        kind, name = obj["kind"], obj["metadata"]["name"]
        status, out = await self.api.call("POST", rbac_path(self.namespace, kind), f"{kind} create", obj)
        if status != 409:
            _raise_for(status, out, f"{kind} create of {name!r}")
            return
        status, current = await self.api.call("GET", rbac_path(self.namespace, kind, name), f"{kind} read")
        _raise_for(status, current, f"{kind} read of {name!r}")
        meta = {**obj["metadata"], "resourceVersion": (current.get("metadata") or {}).get("resourceVersion")}
        status, out = await self.api.call("PUT", rbac_path(self.namespace, kind, name), f"{kind} update",
                                          {**obj, "metadata": meta})
        _raise_for(status, out, f"{kind} update of {name!r}")

    async def remove(self, kind: str, name: str) -> None:
        """Delete the Role or RoleBinding ``name``; one that is gone already is fine."""
        status, out = await self.api.call("DELETE", rbac_path(self.namespace, kind, name), f"{kind} delete")
        if status != 404:
            _raise_for(status, out, f"{kind} delete of {name!r}")


def _message(obj: dict[str, Any]) -> str:
    message = obj.get("message")
    return str(message)[:_MESSAGE_MAX] if message else "no message"


def _raise_for(status: int, obj: dict[str, Any], what: str) -> None:
    if status in (200, 201, 202):
        return
    err: GatewayError
    if status == 409:
        err = ResourceConflict(f"the endpoint's permissions were changed concurrently; retry ({what})")
    elif status in (400, 422):
        err = BadRequest(f"the Kubernetes API server refused the {what}: {_message(obj)}")
    else:
        log.warning("the API server answered %s to the gateway's %s: %s", status, what, _message(obj))
        err = IdentityUnavailable(f"the Kubernetes API server refused the gateway's {what} (HTTP {status}): "
                                  f"{_message(obj)}")
    raise err
