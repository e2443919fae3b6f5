"""Who may manage which endpoint: Kubernetes RBAC, asked as a SubjectAccessReview for the caller before the
gateway acts with its own ServiceAccount (the "equivalent check" to impersonation; the gateway needs no
``impersonate`` right).

| Databricks call                     | the caller needs (``servingendpoints.serving.modelgate.io``, namespaced) |
|-------------------------------------|---------------------------------------------------------------------------|
| create                              | ``create``; and ``get`` on every Secret its ``{{secrets/...}}`` name       |
|                                     | (on update: every Secret the call adds)                                   |
| get                                 | ``get`` on the endpoint                                                   |
| list                                | ``list``                                                                  |
| update config / ai-gateway / tags / rate limits | ``update`` on the endpoint (and ``get`` on referenced Secrets)  |
| delete                              | ``delete`` on the endpoint                                                |
| get permissions / permission levels | ``get`` on the endpoint (:mod:`.permission_routes`)                        |
| set / update permissions            | ``update`` on the endpoint                                                |

``permission_level`` in a read answer is the caller's highest: ``CAN_MANAGE`` (``update``), ``CAN_QUERY``
(``query``), else ``CAN_VIEW``. Reviews are not cached: a revoked RoleBinding counts at the next call.
"""

from __future__ import annotations

from typing import Any

from ...errors import PermissionDenied
from ...exchange import Principal
from ...spec import GROUP
from ...stages.identity.kubeapi import KubeApi
from ...stages.identity.sar import PATH, RESOURCE, allowed_from_review


class ManagementAccess:
    def __init__(self, api: KubeApi, namespace: str) -> None:
        self.api = api
        self.namespace = namespace

    async def allowed(self, principal: Principal, verb: str, name: str = "", *, group: str = GROUP,
                      resource: str = RESOURCE) -> bool:
        if principal.kind == "anonymous":
            return False
        attributes: dict[str, Any] = {"namespace": self.namespace, "verb": verb, "group": group,
                                      "resource": resource}
        if name:
            attributes["name"] = name
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                  "spec": {"user": principal.name, "groups": list(principal.groups),
                           "resourceAttributes": attributes}}
        return allowed_from_review(await self.api.create(PATH, review))

    async def require(self, principal: Principal, verb: str, name: str = "", *, named: bool = True) -> None:
        """``named=False`` reviews without the name (a create: RBAC never sees the name of what is created, so
        a ``resourceNames`` rule cannot allow it), while the message still says which endpoint."""
        if not await self.allowed(principal, verb, name if named else ""):
            what = f"the serving endpoint {name!r}" if name else "serving endpoints"
            raise PermissionDenied(
                f"{principal.name!r} may not {verb} {what} in the namespace {self.namespace!r} (Kubernetes RBAC: "
                f"verb {verb!r} on servingendpoints.serving.modelgate.io; docs/management-api.md)"
            )

    async def require_secrets(self, principal: Principal, secrets: list[str]) -> None:
        for secret in secrets:
            if not await self.allowed(principal, "get", secret, group="", resource="secrets"):
                raise PermissionDenied(
                    f"{principal.name!r} may not read the Secret {secret!r} the body references "
                    f"({{{{secrets/{secret}/...}}}}); an endpoint may only use Secrets its creator can read"
                )

    async def permission_level(self, principal: Principal, name: str) -> str:
        if await self.allowed(principal, "update", name):
            return "CAN_MANAGE"
        if await self.allowed(principal, "query", name):
            return "CAN_QUERY"
        return "CAN_VIEW"
