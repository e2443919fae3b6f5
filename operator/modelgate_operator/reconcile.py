"""One reconcile of one ServingEndpoint: read what is needed, apply the children, write the status.

Level-triggered and idempotent: it looks only at the endpoint's current spec and the Secrets it references,
applies byte-identical manifests when nothing changed (a server-side no-op) and skips the status PATCH when
the status would not change. Running it twice in a row changes nothing the second time.

Invalid config (checks of :mod:`.validation`) or an unresolvable reference leaves the children as they are
(the previous config keeps serving, like a failed Databricks config update) and reports why in the status.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from modelgate_proxy.spec import ServingEndpointSpec

from . import render, secrets, status, validation
from .kube import Kube
from .render import Owner, ProxyDefaults

logger = logging.getLogger("modelgate_operator.reconcile")

OWNED_KINDS = ("Deployment", "Service", "ConfigMap", "Secret")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a reconcile did (for logs and tests; never contains a credential)."""

    applied: bool
    status_written: bool
    ready: str
    reason: str


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _rfc3339(t: datetime.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _validation_message(exc: ValidationError) -> str:
    # Pydantic messages carry the offending input only with include_input; keep locations and messages.
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)[:2000]


class Reconciler:
    """Reconciles endpoints; one at a time per endpoint (kopf's handlers and Secret-triggered runs share it)."""

    def __init__(self, kube: Kube, defaults: ProxyDefaults) -> None:
        self.kube = kube
        self.defaults = defaults
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._seen: dict[tuple[str, str], status.ProxyState] = {}

    def lock(self, namespace: str, name: str) -> asyncio.Lock:
        return self._locks.setdefault((namespace, name), asyncio.Lock())

    def forget(self, namespace: str, name: str) -> None:
        self._locks.pop((namespace, name), None)
        self._seen.pop((namespace, name), None)

    async def deployment_changed(self, namespace: str, name: str, state: status.ProxyState) -> Outcome | None:
        """Reconcile after a Deployment event, unless its state is the one the last reconcile already used
        (e.g. the event of the operator's own apply)."""
        if self._seen.get((namespace, name)) == state:
            return None
        return await self.reconcile_by_name(namespace, name)

    async def reconcile_by_name(self, namespace: str, name: str) -> Outcome | None:
        """Fetch the endpoint and reconcile it (used when a Secret or the Deployment changed)."""
        async with self.lock(namespace, name):
            body = await self.kube.get_endpoint(namespace, name)
            if body is None or body.get("metadata", {}).get("deletionTimestamp"):
                return None
            return await self._reconcile(body)

    async def reconcile(self, body: Mapping[str, Any]) -> Outcome:
        meta = body["metadata"]
        async with self.lock(meta["namespace"], meta["name"]):
            return await self._reconcile(body)

    async def _reconcile(self, body: Mapping[str, Any]) -> Outcome:
        meta = body["metadata"]
        owner = Owner(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])
        generation = int(meta.get("generation") or 0)
        previous = body.get("status") or {}
        url = render.endpoint_url(owner, self.defaults)

        spec: ServingEndpointSpec | None = None
        config = status.Check("True", "ConfigValid", "the configuration is valid")
        secret_check = status.Check("Unknown", "NotChecked", "the configuration is not valid")
        applied = False
        try:
            spec = ServingEndpointSpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            config = status.Check("False", "InvalidSpec", _validation_message(exc))
        if spec is not None:
            issues = validation.problems(spec)
            if issues:
                config = status.Check("False", "InvalidConfig", "; ".join(issues))
        if spec is not None and config.status == "True":
            fields = secrets.collect(spec)
            fetched = {
                name: await self.kube.secret_data(owner.namespace, name)
                for name in secrets.referenced_secret_names(fields)
            }
            try:
                resolved = secrets.resolve(fields, fetched)
            except secrets.SecretResolutionError as exc:
                secret_check = status.Check("False", exc.reason, str(exc))
            else:
                n = len(secrets.references(fields))
                secret_check = status.Check("True", "SecretsResolved", f"{n} secret reference(s) resolved")
                children = render.render(owner, spec, resolved, self.defaults, fields)
                for manifest in children.in_apply_order():
                    await self.kube.apply(manifest)
                applied = True
        deployment = await self.kube.proxy_state(owner.namespace, render.child_name(owner.name))
        self._seen[(owner.namespace, owner.name)] = deployment
        proxy = status.proxy_check(deployment)
        now = _now()
        desired = status.build_status(
            spec=spec,
            previous=previous,
            generation=generation,
            config=config,
            secrets=secret_check,
            proxy=proxy,
            url=url,
            now=_rfc3339(now),
            rolling=status.rolling_out(deployment),
        )
        written = False
        if not status.same_status(previous, desired):
            await self.kube.patch_status(owner.namespace, owner.name, desired)
            written = True
            await self._events(body, previous, desired, now)
        ready = desired["conditions"][0]
        logger.info(
            "reconciled %s/%s generation %d: Ready=%s (%s)%s%s",
            owner.namespace,
            owner.name,
            generation,
            ready["status"],
            ready["reason"],
            ", children applied" if applied else "",
            ", status updated" if written else "",
        )
        return Outcome(applied=applied, status_written=written, ready=ready["status"], reason=ready["reason"])

    async def _events(
        self, body: Mapping[str, Any], previous: Mapping[str, Any], desired: Mapping[str, Any], now: datetime.datetime
    ) -> None:
        for cond in status.transitions(previous, dict(desired)):
            if cond["type"] != status.READY:
                continue
            kind = "Normal" if cond["status"] == "True" else "Warning"
            reason = cond["reason"]
            try:
                await self.kube.post_event(body, type_=kind, reason=reason, message=cond["message"], now=now)
            except Exception as exc:
                logger.warning("could not record an event: %s", exc)

    async def cleanup(self, namespace: str, name: str) -> list[str]:
        """Delete every child and the owned Secret (there may be no garbage collector). Returns what was deleted."""
        targets = [
            ("Deployment", render.child_name(name)),
            ("Service", render.child_name(name)),
            ("ConfigMap", render.child_name(name)),
            ("Secret", render.owned_secret_name(name)),
        ]
        deleted = []
        for kind, child in targets:
            if await self.kube.delete(kind, namespace, child):
                deleted.append(f"{kind}/{child}")
        logger.info("deleted the children of %s/%s: %s", namespace, name, ", ".join(deleted) or "none left")
        self.forget(namespace, name)
        return deleted
