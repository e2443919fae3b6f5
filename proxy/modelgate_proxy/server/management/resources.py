"""The management API's reads and writes of ServingEndpoint objects and of the endpoint's own plaintext Secret,
over plain HTTPS with the gateway's ServiceAccount (:class:`~modelgate_proxy.stages.identity.kubeapi.KubeApi`).

The API server's answers are mapped once, here: 404 -> ``RESOURCE_DOES_NOT_EXIST``, 409 on create ->
``RESOURCE_ALREADY_EXISTS``, 409 on update -> ``RESOURCE_CONFLICT`` (changed concurrently), 400/422 ->
``INVALID_PARAMETER_VALUE`` with the API server's own message (a CRD schema or CEL rule that refused the
object), 401/403 -> 503 (the gateway's own ServiceAccount lacks a right: the operator's problem, not the
caller's). A list is read in pages of :data:`PAGE` objects, at most :data:`MAX_LISTED` in all.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from ...errors import (
    BadRequest,
    EndpointNotFound,
    GatewayError,
    IdentityUnavailable,
    ResourceAlreadyExists,
    ResourceConflict,
)
from ...spec import API_VERSION, KIND
from ...stages.identity.kubeapi import KubeApi

log = logging.getLogger("modelgate.management")

PAGE = 100
MAX_LISTED = 1000
"""The most endpoints one list answers (a namespace with more is refused with a clear error)."""
_MESSAGE_MAX = 2000


def endpoints_path(namespace: str, name: str | None = None) -> str:
    base = f"/apis/{API_VERSION}/namespaces/{namespace}/servingendpoints"
    return base if name is None else f"{base}/{quote(name, safe='')}"


def secrets_path(namespace: str, name: str | None = None) -> str:
    base = f"/api/v1/namespaces/{namespace}/secrets"
    return base if name is None else f"{base}/{quote(name, safe='')}"


class EndpointStore:
    def __init__(self, api: KubeApi, namespace: str) -> None:
        self.api = api
        self.namespace = namespace

    async def get(self, name: str) -> dict[str, Any]:
        status, obj = await self.api.call("GET", endpoints_path(self.namespace, name), "ServingEndpoint read")
        _raise_for(status, obj, name, "read")
        return obj

    async def list(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            query = f"?limit={PAGE}" + (f"&continue={quote(token, safe='')}" if token else "")
            status, page = await self.api.call("GET", endpoints_path(self.namespace) + query, "ServingEndpoint list")
            _raise_for(status, page, "", "list")
            items.extend(i for i in page.get("items") or [] if isinstance(i, dict))
            if len(items) > MAX_LISTED:
                raise BadRequest(f"the namespace {self.namespace!r} has more than {MAX_LISTED} serving endpoints; "
                                 "list them with kubectl")
            token = str((page.get("metadata") or {}).get("continue") or "")
            if not token:
                return items

    async def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        name = manifest["metadata"]["name"]
        status, obj = await self.api.call("POST", endpoints_path(self.namespace), "ServingEndpoint create", manifest)
        if status == 409:
            raise ResourceAlreadyExists(f"a serving endpoint named {name!r} already exists")
        _raise_for(status, obj, name, "create")
        return obj

    async def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        status, out = await self.api.call("PUT", endpoints_path(self.namespace, name), "ServingEndpoint update", obj)
        _raise_for(status, out, name, "update")
        return out

    async def delete(self, name: str) -> None:
        status, obj = await self.api.call("DELETE", endpoints_path(self.namespace, name), "ServingEndpoint delete",
                                          {"kind": "DeleteOptions", "apiVersion": "v1",
                                           "propagationPolicy": "Background"})
        _raise_for(status, obj, name, "delete")

    async def write_plaintext(self, owner: dict[str, Any], secret: str, data: dict[str, str]) -> None:
        """Create a new Secret owned by the endpoint (it goes when the endpoint goes) with ``data``. Create only:
        an existing Secret of that name is never changed. Values never appear in a log line or an error."""
        meta = owner["metadata"]
        reference = {"apiVersion": API_VERSION, "kind": KIND, "name": meta["name"], "uid": meta["uid"],
                     "controller": False, "blockOwnerDeletion": False}
        body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": secret, "namespace": self.namespace, "ownerReferences": [reference],
                             "labels": {"serving.modelgate.io/plaintext-of": meta["name"]}},
                "stringData": data}
        status, _ = await self.api.call("POST", secrets_path(self.namespace), "Secret create", body)
        if status not in (200, 201):
            log.warning("writing the Secret %s failed: HTTP %s", secret, status)
            raise IdentityUnavailable(f"the gateway could not write the Secret {secret!r} for the endpoint's "
                                      f"plaintext credentials (HTTP {status})")


def _message(obj: dict[str, Any]) -> str:
    message = obj.get("message")
    return str(message)[:_MESSAGE_MAX] if message else "no message"


def _raise_for(status: int, obj: dict[str, Any], name: str, what: str) -> None:
    if status in (200, 201, 202):
        return
    err: GatewayError
    if status == 404:
        err = EndpointNotFound(f"the serving endpoint {name[:253]!r} does not exist")
    elif status == 409:
        err = ResourceConflict(f"the serving endpoint {name!r} was changed concurrently; retry: {_message(obj)}")
    elif status in (400, 422):
        err = BadRequest(f"the Kubernetes API server refused the ServingEndpoint: {_message(obj)}")
    else:
        log.warning("the API server answered %s to the gateway's ServingEndpoint %s", status, what)
        err = IdentityUnavailable(f"the Kubernetes API server refused the gateway's ServingEndpoint {what} "
                                  f"(HTTP {status})")
    raise err
