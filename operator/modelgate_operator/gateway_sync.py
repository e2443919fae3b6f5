"""Keeping each namespace's workspace gateway (:mod:`.render_gateway`) in line with its ServingEndpoints.

After every endpoint reconcile and deletion, :meth:`GatewaySync.request` schedules one sync of the namespace,
:data:`DEBOUNCE_SECONDS` later (a burst of reconciles, as at startup, gives one sync, not one per endpoint; a
request while a sync runs gives one more after it). A sync lists the namespace's endpoints:

- none left (deleted ones, with a deletionTimestamp, do not count): the gateway's objects are deleted (only
  those :func:`.render_gateway.is_ours`) and its ServiceAccount leaves the reviews binding;
- else: the Secret keys their valid specs reference (with ``--require-secret-label``, only labelled Secrets),
  a digest of their values (from the same cache as the reconciles) and the gateway's objects are applied.

An object named ``modelgate-gateway`` that is not ours stops the sync (nothing is written) with a warning log.
A failing sync is logged and tried again at the next trigger (the periodic resync reconciles every endpoint).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any

from pydantic import ValidationError

from modelgate_proxy.spec import ServingEndpointSpec

from . import render_gateway, secrets
from .kube import Kube, ServingEndpoint
from .render import Owner, ProxyDefaults
from .render_config import config_text
from .reviews_binding import ReviewsBinding
from .secretcache import SecretCache

logger = logging.getLogger("modelgate_operator.gateway")
DEBOUNCE_SECONDS = 0.5
MAX_ENDPOINTS = 1000
"""A namespace's endpoints the gateway is rendered for (their ownerReferences and Secret keys stay well under the
API server's object size limit: tests/operator/test_render_gateway.py); past it, a warning is logged."""


class GatewayConflict(Exception):
    """An object of the gateway's name exists and was not rendered by this operator."""


class GatewaySync:
    def __init__(self, kube: Kube, reviews: ReviewsBinding, defaults: ProxyDefaults, cache: SecretCache,
                 require_label: bool = False) -> None:  # fmt: skip
        self.kube, self.reviews, self.defaults, self.cache = kube, reviews, defaults, cache
        self.require_label = require_label
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()

    def request(self, namespace: str) -> None:
        """Sync ``namespace`` soon (never blocks the caller)."""
        if not self.defaults.gateway.enabled:
            return
        if namespace in self._tasks:
            self._again.add(namespace)
            return
        self._tasks[namespace] = asyncio.create_task(self._run(namespace))

    async def _run(self, namespace: str) -> None:
        try:
            while True:
                await asyncio.sleep(DEBOUNCE_SECONDS)
                self._again.discard(namespace)
                try:
                    await self.sync(namespace)
                except Exception as exc:  # a KubeError's message carries no Secret content
                    logger.warning("gateway of %s not synced: %s", namespace, exc)
                if namespace not in self._again:
                    return
        finally:
            self._tasks.pop(namespace, None)

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        self._tasks.clear()

    async def sync(self, namespace: str) -> list[str]:
        """Apply or delete the gateway of ``namespace``; returns ``Kind/name`` of what was applied or deleted."""
        endpoints: list[dict[str, Any]] = []
        async for e in self.kube.client.list(ServingEndpoint, namespace=namespace):
            body: dict[str, Any] = e.to_dict()  # type: ignore[no-untyped-call]
            if not (body.get("metadata") or {}).get("deletionTimestamp"):
                endpoints.append(body)
            if len(endpoints) > MAX_ENDPOINTS:
                logger.warning("namespace %s has more than %d endpoints: the gateway is rendered for the first "
                               "(the others' Secrets are not mounted)", namespace, MAX_ENDPOINTS)  # fmt: skip
                endpoints = endpoints[:MAX_ENDPOINTS]
                break
        if not endpoints:
            return await self._delete(namespace)
        owners = [Owner(name=b["metadata"]["name"], namespace=namespace, uid=b["metadata"]["uid"]) for b in endpoints]
        keys: dict[str, set[str]] = {}
        for body in endpoints:
            try:
                spec = ServingEndpointSpec.model_validate(body.get("spec") or {})
            except ValidationError:
                continue  # not served by the gateway either (its reconcile reports why)
            for ref in secrets.references(secrets.collect(spec)):
                keys.setdefault(ref.name, set()).add(ref.key)
        if self.require_label and keys:
            unlabelled = await self.cache.unlabelled(namespace, sorted(keys), self.kube.secret_labels)
            keys = {n: k for n, k in keys.items() if n not in unlabelled}
        values = await self.cache.fetch(namespace, sorted(keys), self.kube.secret_data)
        references = {name: sorted(k) for name, k in sorted(keys.items())}
        auth_text = config_text(render_gateway.auth_config(namespace, self.defaults))
        digest = hashlib.sha256(json.dumps({"refs": references, "values": values, "auth": auth_text},
                                           sort_keys=True).encode()).hexdigest()  # fmt: skip
        manifests = render_gateway.render(namespace, owners, references, digest, self.defaults, self.defaults.gateway)
        for m in manifests:
            live = await self.kube.get_child(m["kind"], namespace, render_gateway.NAME)
            if live is not None and not render_gateway.is_ours(live):
                raise GatewayConflict(f"{m['kind']} {namespace}/{render_gateway.NAME} exists and is not the "
                                      "operator's gateway: the gateway is not written")  # fmt: skip
        done = []
        for m in manifests:
            await self.kube.apply(m)
            done.append(f"{m['kind']}/{render_gateway.NAME}")
        if not any(m["kind"] == "Ingress" for m in manifests):
            done += await self._delete(namespace, ("Ingress",))
        problem = await self.reviews.ensure(namespace, render_gateway.NAME)
        if problem is not None:
            logger.warning("gateway of %s cannot review callers: %s", namespace, problem.message)
        logger.info("gateway of %s applied for %d endpoint(s), %d Secret(s) mounted", namespace, len(owners),
                    len(references))  # fmt: skip
        return done

    async def _delete(self, namespace: str, kinds: tuple[str, ...] = render_gateway.KINDS) -> list[str]:
        deleted = []
        for kind in reversed(kinds):
            live = await self.kube.get_child(kind, namespace, render_gateway.NAME)
            if live is not None and render_gateway.is_ours(live):
                uid = str(live["metadata"].get("uid") or "") or None
                if await self.kube.delete(kind, namespace, render_gateway.NAME, uid=uid):
                    deleted.append(f"{kind}/{render_gateway.NAME}")
        if len(kinds) > 1:
            problem = await self.reviews.remove(namespace, render_gateway.NAME)
            if problem is not None:
                logger.warning("gateway of %s: %s", namespace, problem.message)
            if deleted:
                logger.info("gateway of %s deleted (no endpoint left): %s", namespace, ", ".join(deleted))
        return deleted
