"""Writing and deleting an endpoint's children, touching only objects the endpoint owns.

An object counts as the endpoint's when its controller ownerReference carries the endpoint's uid. Before a
child is written the first time (by this process), the live object of that name is read:

- none: the child is created (server-side apply);
- ours: it is applied, with its ``metadata.uid`` as a precondition;
- anyone else's (a user's ConfigMap, a Deployment of another tool, a leftover of a deleted endpoint of the same
  name): nothing is written at all, and :class:`ChildConflict` names the kind and name.

Once a child is known to be ours, later applies send its uid as a precondition (no extra read): if the object
was deleted and replaced by someone else's in between, the API server refuses the apply (409/422) and the
ownership is checked again. The remaining window - an object created by someone else between the read that
found no object and the create - is one round trip wide. Deletion is by uid precondition, so it removes only
the object that was checked.

Failed writes raise :class:`ChildWriteFailed` with the API server's code, reason and message (never a Secret's:
see :mod:`.kube`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from . import render, render_auth
from .failures import is_permanent
from .kube import Kube, KubeError
from .render_scaling import SCALING_KINDS


class ChildConflict(Exception):
    """Objects with a child's name exist and are not controller-owned by this endpoint."""

    def __init__(self, conflicts: Sequence[tuple[str, str, str]]) -> None:
        self.conflicts = list(conflicts)
        parts = [f"{kind} {name} already exists and is {who}" for kind, name, who in self.conflicts]
        super().__init__(
            "; ".join(parts) + ": the operator leaves it alone and creates no children until it is renamed, "
            "deleted, or the endpoint is renamed"
        )


class ChildWriteFailed(Exception):
    """The API server rejected a write of one or more children."""

    def __init__(self, failures: Sequence[tuple[str, str, KubeError]]) -> None:
        self.failures = list(failures)
        first = self.failures[0][2]
        self.reason = first.reason or "ApplyFailed"
        parts = [f"{kind} {name}: {exc.code} {exc.reason} {exc.detail}".rstrip() for kind, name, exc in self.failures]
        super().__init__("the API server rejected " + "; ".join(parts))

    @property
    def retryable(self) -> bool:
        """A conflict, a timeout, RBAC being fixed may pass; a rejected manifest will not (:mod:`.failures`)."""
        return any(not is_permanent(exc) for _, _, exc in self.failures)


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of the object's controller ownerReference, or None."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return str(ref.get("uid") or "") or None
    return None


def _describe_owner(obj: Mapping[str, Any], endpoint: render.Owner) -> str:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            if ref.get("kind") == "ServingEndpoint" and ref.get("name") == endpoint.name:
                return f"owned by an earlier ServingEndpoint {endpoint.name} (uid {ref.get('uid')})"
            return f"controlled by {ref.get('kind')} {ref.get('name')}"
    return "not managed by this endpoint"


class ChildWriter:
    """Applies and deletes children; remembers, per endpoint, the uids of the children it has verified as owned."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._owned: dict[tuple[str, str], dict[str, str]] = {}
        self._absent: set[tuple[str, str, str]] = set()
        """(namespace, endpoint, kind) of optional children known not to exist (no read needed to prune)."""

    def forget(self, namespace: str, name: str) -> None:
        self._owned.pop((namespace, name), None)
        self._absent = {a for a in self._absent if a[:2] != (namespace, name)}

    async def _check(self, owner: render.Owner, manifest: Mapping[str, Any]) -> tuple[str, str, str] | None:
        """None when the child may be written (absent or ours, remembering its uid); else a conflict."""
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        owned = self._owned.setdefault((owner.namespace, owner.name), {})
        if kind in owned:
            return None
        live = await self.kube.get_child(kind, owner.namespace, name)
        if live is None:
            return None
        if controller_uid(live) != owner.uid:
            return (kind, name, _describe_owner(live, owner))
        owned[kind] = str(live["metadata"]["uid"])
        return None

    async def _apply(self, owner: render.Owner, manifest: Mapping[str, Any], retry: bool = True) -> dict[str, Any]:
        kind = manifest["kind"]
        owned = self._owned.setdefault((owner.namespace, owner.name), {})
        uid = owned.get(kind)
        try:
            obj = await self.kube.apply(manifest, uid=uid)
        except KubeError as exc:
            if uid is None or not retry or exc.code not in (409, 422):
                raise
            owned.pop(kind, None)  # perhaps replaced since: check who owns it now, then try once more
            conflict = await self._check(owner, manifest)
            if conflict is not None:
                raise ChildConflict([conflict]) from None
            return await self._apply(owner, manifest, retry=False)
        owned[kind] = str((obj.get("metadata") or {}).get("uid") or "") or owned.get(kind, "")
        if not owned[kind]:
            owned.pop(kind)
        return obj

    async def apply_all(self, owner: render.Owner, manifests: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Apply every child (concurrently, Roles before their bindings), or none when any belongs to someone else."""
        conflicts = [c for c in await asyncio.gather(*(self._check(owner, m) for m in manifests)) if c is not None]
        if conflicts:
            raise ChildConflict(conflicts)
        # The operator holds no `bind` verb: the API server admits a RoleBinding only once its Role exists and
        # grants nothing the operator lacks (else 404/403, no retry). Roles first, then the rest concurrently.
        results: list[dict[str, Any] | BaseException | None] = [None] * len(manifests)
        for wave in ([i for i, m in enumerate(manifests) if m["kind"] == "Role"],
                     [i for i, m in enumerate(manifests) if m["kind"] != "Role"]):  # fmt: skip
            done = await asyncio.gather(*(self._apply(owner, manifests[i]) for i in wave), return_exceptions=True)
            for i, one in zip(wave, done, strict=True):
                results[i] = one
        failures = []
        for manifest, result in zip(manifests, results, strict=True):
            if isinstance(result, ChildConflict):
                raise result
            if isinstance(result, KubeError):
                failures.append((manifest["kind"], manifest["metadata"]["name"], result))
            elif isinstance(result, BaseException):
                raise result
        if failures:
            raise ChildWriteFailed(failures)
        await self._prune(owner, {m["kind"] for m in manifests})
        return [r for r in results if isinstance(r, dict)]

    async def _prune(self, owner: render.Owner, wanted: set[str]) -> None:
        """Delete the optional children (autoscaler, disruption budget) the spec no longer asks for; read each
        once per process, then only after this process wrote it."""
        key = (owner.namespace, owner.name)
        owned = self._owned.setdefault(key, {})
        for kind in SCALING_KINDS:
            if kind in wanted:
                self._absent.discard((*key, kind))
                continue
            if (*key, kind) in self._absent and kind not in owned:
                continue
            child = render.child_name(owner.name)
            live = await self.kube.get_child(kind, owner.namespace, child)
            if live is not None and controller_uid(live) == owner.uid:
                await self.kube.delete(kind, owner.namespace, child, uid=str(live["metadata"]["uid"]))
            owned.pop(kind, None)
            self._absent.add((*key, kind))

    async def exists_owned(self, owner: render.Owner, kind: str, name: str) -> bool:
        live = await self.kube.get_child(kind, owner.namespace, name)
        return live is not None and controller_uid(live) == owner.uid

    async def delete_owned(self, owner: render.Owner, targets: Sequence[tuple[str, str]]) -> list[str]:
        """Delete those of ``targets`` (kind, name) that the endpoint controls. Returns them."""
        deleted = []
        owned = self._owned.setdefault((owner.namespace, owner.name), {})
        for kind, child in targets:
            live = await self.kube.get_child(kind, owner.namespace, child)
            owned.pop(kind, None)
            if live is None or controller_uid(live) != owner.uid:
                continue
            if await self.kube.delete(kind, owner.namespace, child, uid=str(live["metadata"]["uid"])):
                deleted.append(f"{kind}/{child}")
        return deleted

    async def delete_all(self, namespace: str, name: str, uid: str) -> list[str]:
        """Delete the children controller-owned by the endpoint with ``uid`` (each by its own uid). Returns them."""
        targets = [
            ("Deployment", render.child_name(name)),
            ("Service", render.child_name(name)),
            ("ConfigMap", render.child_name(name)),
            ("Secret", render.owned_secret_name(name)),
            ("RoleBinding", render_auth.api_keys_name(render.child_name(name))),
            ("Role", render_auth.api_keys_name(render.child_name(name))),
            *((kind, render.child_name(name)) for kind in SCALING_KINDS),
        ]
        deleted = []
        for kind, child in targets:
            live = await self.kube.get_child(kind, namespace, child)
            if live is None or controller_uid(live) != uid:
                continue
            if await self.kube.delete(kind, namespace, child, uid=str(live["metadata"]["uid"])):
                deleted.append(f"{kind}/{child}")
        self.forget(namespace, name)
        return deleted
