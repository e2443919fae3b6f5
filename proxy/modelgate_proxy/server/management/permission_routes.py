"""The Databricks permissions API of serving endpoints (``/api/2.0/permissions/serving-endpoints/{id}``) on RBAC
Roles and RoleBindings (:mod:`.permissions`, :mod:`.permission_store`).

``{id}`` is the endpoint's ``id`` as the get answer shows it (the uid without dashes) or its name. Reading the
permissions (``GET``, ``.../permissionLevels``) needs ``get`` on the endpoint (CAN_VIEW); changing them
(``PUT`` replaces the direct ACL, ``PATCH`` sets the levels of the principals it names) needs ``update`` on it
(CAN_MANAGE), asked by SubjectAccessReview for the caller before the gateway writes with its own ServiceAccount.

The answer lists the direct permissions (the managed RoleBindings) and, marked ``inherited``, the level other RBAC
gives each subject of the namespace's other RoleBindings (at most :data:`MAX_INHERITED` subjects, each asked by
SubjectAccessReview), when it is higher than the subject's direct level.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...errors import EndpointNotFound, PermissionDenied
from ...exchange import Principal
from ...spec.databricks_bodies import kubernetes_name
from .access import ManagementAccess
from .permission_store import PermissionStore
from .permissions import (
    ORDER,
    OWNER_UID_LABEL,
    Acl,
    Subject,
    answer,
    binding,
    direct_acl,
    level_of,
    levels_answer,
    merged_acl,
    object_name,
    parse_acl,
    role,
    subject_of,
)
from .request_body import Handler, json_body
from .resources import EndpointStore

BASE = "/api/2.0/permissions/serving-endpoints"
MAX_INHERITED = 50
"""The most subjects of other RoleBindings whose inherited level one read asks RBAC about."""
MAX_SOURCES = 10
"""The most RoleBindings one inherited entry names in ``inherited_from_object``."""
_CONCURRENT_REVIEWS = 8
_ID = re.compile(r"[0-9a-f]{32}")
_LEVEL_VERBS = (("CAN_MANAGE", "update"), ("CAN_QUERY", "query"), ("CAN_VIEW", "get"))


def endpoint_id(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid", "")).replace("-", "")


def _as_principal(subject: Subject) -> Principal:
    kind, name, namespace = subject
    if kind == "ServiceAccount":
        return Principal("service_principal", f"system:serviceaccount:{namespace}:{name}",
                         ("system:serviceaccounts", f"system:serviceaccounts:{namespace}"))
    if kind == "Group":
        return Principal("user", "", (name,))
    return Principal("user", name)


def permission_routes(access: ManagementAccess, store: EndpointStore, rbac: PermissionStore,
                      route: Callable[[Handler], Callable[[Request], Awaitable[Response]]]) -> list[BaseRoute]:
    namespace = store.namespace

    async def resolve(request: Request, principal: Principal, verb: str) -> dict[str, Any]:
        """The endpoint ``{id}`` names (its name, or its id), after RBAC allowed ``verb`` on it."""
        raw = str(request.path_params["id"])
        name = kubernetes_name(raw, fallback="endpoint")
        by_name = await access.allowed(principal, verb, name)
        if by_name:
            try:
                return await store.get(name)
            except EndpointNotFound:
                if not _ID.fullmatch(raw):
                    raise
        if _ID.fullmatch(raw):
            for obj in await store.list():
                if endpoint_id(obj) == raw:
                    await access.require(principal, verb, str(obj["metadata"]["name"]))
                    return obj
            if by_name:
                raise EndpointNotFound(f"no serving endpoint has the name or id {raw!r}")
        await access.require(principal, verb, name)  # raises: not allowed
        raise PermissionDenied(f"{principal.name!r} may not {verb} the serving endpoint {name!r}")

    async def inherited(obj: dict[str, Any], direct: Acl) -> dict[Subject, tuple[str, list[str]]]:
        sources: dict[Subject, list[str]] = {}
        for item in await rbac.all_bindings():
            meta = item.get("metadata") or {}
            if OWNER_UID_LABEL in (meta.get("labels") or {}):
                continue
            for raw in item.get("subjects") or []:
                subject = subject_of(raw)
                if subject is not None and (subject in sources or len(sources) < MAX_INHERITED):
                    sources.setdefault(subject, []).append(f"/namespaces/{namespace}/rolebindings/{meta.get('name')}")
        name = str(obj["metadata"]["name"])
        limit = asyncio.Semaphore(_CONCURRENT_REVIEWS)

        async def level(subject: Subject) -> str | None:
            async with limit:
                for lv, verb in _LEVEL_VERBS:
                    if await access.allowed(_as_principal(subject), verb, name):
                        return lv
            return None

        subjects = list(sources)
        levels = await asyncio.gather(*(level(s) for s in subjects))
        out: dict[Subject, tuple[str, list[str]]] = {}
        for subject, lv in zip(subjects, levels, strict=True):
            if lv is not None and (subject not in direct or ORDER.index(lv) > ORDER.index(direct[subject])):
                out[subject] = (lv, sources[subject][:MAX_SOURCES])
        return out

    async def read(obj: dict[str, Any]) -> dict[str, Any]:
        direct = direct_acl(await rbac.managed_bindings(str(obj["metadata"]["uid"])))
        return answer(endpoint_id(obj), direct, await inherited(obj, direct))

    async def write(obj: dict[str, Any], acl: Acl, stored: list[dict[str, Any]]) -> dict[str, Any]:
        """Removals first (a failure part-way leaves fewer rights, never more), then the levels that have
        principals."""
        name = str(obj["metadata"]["name"])
        for lv in ORDER:
            if lv in {level_of(b) for b in stored} and lv not in acl.values():
                await rbac.remove("RoleBinding", object_name(name, lv))
                await rbac.remove("Role", object_name(name, lv))
        for lv in ORDER:
            subjects = [s for s, given in acl.items() if given == lv]
            if subjects:
                await rbac.put(role(obj, lv))
                await rbac.put(binding(obj, lv, subjects))
        return await read(obj)

    async def get_permissions(request: Request, principal: Principal) -> Any:
        return await read(await resolve(request, principal, "get"))

    async def get_levels(request: Request, principal: Principal) -> Any:
        await resolve(request, principal, "get")
        return levels_answer()

    async def set_permissions(request: Request, principal: Principal) -> Any:
        obj = await resolve(request, principal, "update")
        acl = parse_acl(await json_body(request), namespace)
        return await write(obj, acl, await rbac.managed_bindings(str(obj["metadata"]["uid"])))

    async def update_permissions(request: Request, principal: Principal) -> Any:
        obj = await resolve(request, principal, "update")
        changes = parse_acl(await json_body(request), namespace)
        stored = await rbac.managed_bindings(str(obj["metadata"]["uid"]))
        return await write(obj, merged_acl(direct_acl(stored), changes), stored)

    return [
        Route(BASE + "/{id}", route(get_permissions), methods=["GET"]),
        Route(BASE + "/{id}", route(set_permissions), methods=["PUT"]),
        Route(BASE + "/{id}", route(update_permissions), methods=["PATCH"]),
        Route(BASE + "/{id}/permissionLevels", route(get_levels), methods=["GET"]),
    ]
