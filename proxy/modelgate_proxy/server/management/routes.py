"""The Databricks serving-endpoints management API on ServingEndpoint resources (``modelgate serve
--management-namespace NS``): create, get, list, update config / AI Gateway / tags / legacy rate limits, delete.
Every call authenticates the caller (the ``--auth-config`` chain), asks RBAC (:mod:`.access`), then acts with the
gateway's ServiceAccount (:mod:`.resources`). Errors are in Databricks' shape."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...errors import BadRequest, GatewayError, ManagedByGitOps
from ...exchange import Principal
from ...spec.databricks_bodies import kubernetes_name
from ...stages.identity.kubeapi import KubeApi, KubeApiSettings
from ..error_responses import error_response
from ..read_common import json_response
from ..state import GatewayState
from .access import ManagementAccess
from .bodies import Prepared, databricks_body, merged, prepare, referenced_secrets
from .permission_routes import permission_routes
from .permission_store import PermissionStore
from .request_body import Handler, json_body
from .resources import EndpointStore
from .serving import EndpointWatch
from .views import CREATOR_ANNOTATION, detailed

log = logging.getLogger("modelgate.management")

BASE = "/api/2.0/serving-endpoints"


@dataclass(frozen=True, slots=True)
class ManagementSettings:
    namespace: str
    """The namespace whose ServingEndpoints this gateway manages."""
    kube: KubeApiSettings = field(default_factory=KubeApiSettings)
    serve: bool = True
    """Serve the namespace's endpoints as they change (:mod:`.serving`), besides the ``-f`` files."""
    refuse_gitops: bool = False
    """Refuse updates and deletes of endpoints a GitOps tool manages (:func:`gitops_marker`)."""


GITOPS_MARKERS = (
    ("annotation", "argocd.argoproj.io/tracking-id"),
    ("label", "app.kubernetes.io/instance"),  # Argo CD's legacy tracking label (and Helm's)
    ("label", "kustomize.toolkit.fluxcd.io/name"),
    ("label", "helm.toolkit.fluxcd.io/name"),
    ("label", "serving.modelgate.io/managed-by-gitops"),
)


def gitops_marker(obj: dict[str, Any]) -> str | None:
    """The first GitOps tracking label or annotation on ``obj``, as ``label foo``; None when there is none."""
    meta = obj.get("metadata") or {}
    for where, key in GITOPS_MARKERS:
        if key in (meta.get("labels" if where == "label" else "annotations") or {}):
            return f"{where} {key}"
    return None


class Management:
    """The running management API: its API client (:meth:`close` at shutdown), RBAC checks, the store."""

    def __init__(self, settings: ManagementSettings, state: GatewayState) -> None:
        self.settings = settings
        self.api = KubeApi(settings.kube)
        self.access = ManagementAccess(self.api, settings.namespace)
        self.store = EndpointStore(self.api, settings.namespace)
        self.permissions = PermissionStore(self.api, settings.namespace)
        self.watch = EndpointWatch(self.api, self.store, state) if settings.serve else None

    async def start(self) -> None:
        if self.watch is not None:
            self.watch.start()

    async def close(self) -> None:
        if self.watch is not None:
            await self.watch.stop()
        await self.api.close()


def _list_of(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"{field}: must be a list", param=field)
    return value


def _edit_tags(body: dict[str, Any], patch: Any) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise BadRequest("the request body must be a JSON object {add_tags, delete_tags}")
    tags = {t.get("key"): t for t in body.get("tags") or [] if isinstance(t, dict)}
    for i, key in enumerate(_list_of(patch.get("delete_tags"), "delete_tags")):
        if not isinstance(key, str):
            raise BadRequest(f"delete_tags[{i}]: must be a tag key (a string)", param="delete_tags")
        tags.pop(key, None)
    for i, tag in enumerate(_list_of(patch.get("add_tags"), "add_tags")):
        if not isinstance(tag, dict) or not isinstance(tag.get("key"), str):
            raise BadRequest(f"add_tags[{i}]: must be an object {{key, value}}", param="add_tags")
        tags[tag["key"]] = tag
    out = {k: v for k, v in body.items() if k != "tags"}
    if tags:
        out["tags"] = list(tags.values())
    return out


def management_routes(state: GatewayState, management: Management) -> list[BaseRoute]:
    access, store, namespace = management.access, management.store, management.settings.namespace

    def check_gitops(obj: dict[str, Any]) -> None:
        marker = gitops_marker(obj) if management.settings.refuse_gitops else None
        if marker is not None:
            raise ManagedByGitOps(f"the serving endpoint {obj['metadata']['name']!r} is managed by GitOps ({marker}); "
                                  "change it in Git (this gateway refuses writes to GitOps-managed endpoints)")

    async def principal_of(request: Request) -> Principal:
        auth = state.services.auth if state.services is not None else None
        if auth is None:  # create_app refuses this; a second line of defence
            raise GatewayError("the management API needs authentication (--auth-config)")
        return await auth.authentication.principal(request.scope["headers"])

    def route(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                principal = await principal_of(request)
                return json_response(await handler(request, principal))
            except GatewayError as err:
                return error_response("databricks", err)
            except Exception:
                log.exception("unexpected error while answering %s %s", request.method, request.url.path[:200])
                return error_response("databricks", GatewayError("internal error in the gateway"))

        return endpoint

    async def write_plaintext(obj: dict[str, Any], prepared: Prepared) -> None:
        if prepared.plaintext:
            await store.write_plaintext(obj, prepared.secret, prepared.plaintext)

    async def create(request: Request, principal: Principal) -> Any:
        prepared = prepare(await json_body(request), namespace)
        name = prepared.manifest["metadata"]["name"]
        await access.require(principal, "create", name, named=False)  # as RBAC sees a create: no name
        await access.require_secrets(principal, [s.name for s in prepared.references])
        prepared.manifest["metadata"].setdefault("annotations", {})[CREATOR_ANNOTATION] = principal.name
        created = await store.create(prepared.manifest)
        try:
            await write_plaintext(created, prepared)
        except GatewayError:
            await store.delete(name)  # no endpoint without its credentials
            raise
        return detailed(created, "CAN_MANAGE")

    async def list_endpoints(_request: Request, principal: Principal) -> Any:
        await access.require(principal, "list")
        out = []
        for obj in await store.list():
            try:
                out.append(detailed(obj, None))
            except GatewayError as err:  # an object kubectl wrote that has no Databricks shape: named, not hidden
                out.append({"name": (obj.get("metadata") or {}).get("name"), "state": {"ready": "NOT_READY"},
                            "description": err.message})
        return {"endpoints": out}

    async def get_endpoint(request: Request, principal: Principal) -> Any:
        name = kubernetes_name(request.path_params["name"], fallback="endpoint")
        await access.require(principal, "get", name)
        return detailed(await store.get(name), await access.permission_level(principal, name))

    async def update(request: Request, principal: Principal,
                     edit: Callable[[dict[str, Any], Any], dict[str, Any]]) -> dict[str, Any]:
        name = kubernetes_name(request.path_params["name"], fallback="endpoint")
        await access.require(principal, "update", name)
        payload = await json_body(request)
        current = await store.get(name)
        check_gitops(current)
        prepared = prepare(edit(databricks_body(current), payload), namespace)
        before = referenced_secrets(current)  # allowed when they were written; only new references are checked
        await access.require_secrets(principal, [s.name for s in prepared.references if s.name not in before])
        await write_plaintext(current, prepared)
        return detailed(await store.replace(merged(current, prepared)), "CAN_MANAGE")

    def _config(body: dict[str, Any], config: Any) -> dict[str, Any]:
        if not isinstance(config, dict):
            raise BadRequest("the request body must be an endpoint config {served_entities, traffic_config, ...}")
        return {**body, "config": config}

    def _ai_gateway(body: dict[str, Any], gateway: Any) -> dict[str, Any]:
        if not isinstance(gateway, dict):
            raise BadRequest("the request body must be an AI Gateway config {usage_tracking_config, ...}")
        return {**body, "ai_gateway": {k: v for k, v in gateway.items() if k != "name"}}

    def _rate_limits(body: dict[str, Any], payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise BadRequest("the request body must be an object {rate_limits: [...]}")
        limits = _list_of(payload.get("rate_limits"), "rate_limits")
        out = {k: v for k, v in body.items() if k != "rate_limits"}
        return {**out, "rate_limits": limits} if limits else out

    async def put_config(request: Request, principal: Principal) -> Any:
        return await update(request, principal, _config)

    async def put_ai_gateway(request: Request, principal: Principal) -> Any:
        return (await update(request, principal, _ai_gateway)).get("ai_gateway", {})

    async def patch_tags(request: Request, principal: Principal) -> Any:
        return {"tags": (await update(request, principal, _edit_tags)).get("tags", [])}

    async def put_rate_limits(request: Request, principal: Principal) -> Any:
        return {"rate_limits": (await update(request, principal, _rate_limits)).get("rate_limits", [])}

    async def delete(request: Request, principal: Principal) -> Any:
        name = kubernetes_name(request.path_params["name"], fallback="endpoint")
        await access.require(principal, "delete", name)
        if management.settings.refuse_gitops:
            check_gitops(await store.get(name))
        await store.delete(name)
        return {}

    listing = route(list_endpoints)
    return [
        Route(BASE, listing, methods=["GET"]),
        Route(BASE + "/", listing, methods=["GET"]),
        Route(BASE, route(create), methods=["POST"]),
        Route(BASE + "/", route(create), methods=["POST"]),
        Route(BASE + "/{name}", route(get_endpoint), methods=["GET"]),
        Route(BASE + "/{name}", route(delete), methods=["DELETE"]),
        Route(BASE + "/{name}/config", route(put_config), methods=["PUT"]),
        Route(BASE + "/{name}/ai-gateway", route(put_ai_gateway), methods=["PUT"]),
        Route(BASE + "/{name}/tags", route(patch_tags), methods=["PATCH"]),
        Route(BASE + "/{name}/rate-limits", route(put_rate_limits), methods=["PUT"]),
        *permission_routes(access, store, management.permissions, route),
    ]
