"""The gateway serves the endpoints of its namespace as they change: a watch on its ServingEndpoints
(re-listed at every reconnect, so a deletion missed while disconnected is noticed) rebuilds an endpoint's runtime
when its spec changes and drops it when it goes. Endpoints loaded from ``-f`` files stay unless the namespace has
an endpoint of the same name, which then wins.

Credentials are read as for every served endpoint: ``{{secrets/<name>/<key>}}`` from ``--secrets-dir``
(in a cluster, the Secrets mounted into the gateway's pod). An object that does not validate is not served; the
reason is logged (and it never stops the others)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from pydantic import ValidationError

from ...endpoints.build import build_endpoints
from ...errors import GatewayError
from ...exchange import EndpointRuntime
from ...spec import ServingEndpoint
from ...stages.identity.kubeapi import KubeApi
from ..state import GatewayState
from .bodies import manifest_of
from .resources import EndpointStore, endpoints_path

log = logging.getLogger("modelgate.management")

WATCH_SECONDS = 300
"""The API server ends a watch after this long; the gateway re-lists and watches again."""
RETRY_SECONDS = 2.0


class EndpointWatch:
    def __init__(self, api: KubeApi, store: EndpointStore, state: GatewayState) -> None:
        self.api = api
        self.store = store
        self.state = state
        self.files: dict[str, EndpointRuntime] = dict(state.endpoints)
        """The endpoints loaded from files, which a watched endpoint of the same name shadows."""
        self.watched: dict[str, int] = {}
        """Watched endpoint name -> the generation being served."""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="servingendpoint-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.sync_once()
                await self._watch()
            except GatewayError as err:
                log.warning("watching the namespace's ServingEndpoints: %s; retrying in %.0f s", err.message,
                            RETRY_SECONDS)
            await asyncio.sleep(RETRY_SECONDS)

    async def sync_once(self) -> None:
        """List the namespace's endpoints and serve exactly those (plus the file-loaded ones they don't shadow)."""
        objects = await self.store.list()
        names = {str(o["metadata"]["name"]) for o in objects}
        for name in list(self.watched):
            if name not in names:
                self.remove(name)
        for obj in objects:
            self.apply(obj)

    async def _watch(self) -> None:
        path = endpoints_path(self.store.namespace) + f"?watch=1&allowWatchBookmarks=true&timeoutSeconds={WATCH_SECONDS}"
        async for event in self.api.watch(path, "ServingEndpoint watch", timeout=WATCH_SECONDS + 30):
            kind, obj = event.get("type"), event.get("object")
            if not isinstance(obj, dict) or kind not in ("ADDED", "MODIFIED", "DELETED"):
                continue
            if kind == "DELETED":
                self.remove(str((obj.get("metadata") or {}).get("name")))
            else:
                self.apply(obj)

    def apply(self, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        name, generation = str(meta.get("name")), int(meta.get("generation") or 0)
        if self.watched.get(name) == generation:
            return  # a status or metadata change: the spec being served is the same
        try:
            endpoint = ServingEndpoint.model_validate(
                {**manifest_of(obj), "metadata": {**manifest_of(obj)["metadata"], "namespace": self.store.namespace}})
            state = self.state
            runtime = build_endpoints([endpoint], state.credentials, state.upstream, state.metrics,
                                      state.services)[endpoint.name]
        except (ValidationError, GatewayError, ValueError) as err:
            log.warning("not serving the ServingEndpoint %r (generation %s): %s", name, generation,
                        str(err).splitlines()[0][:500])
            self.remove(name)
            return
        self.state.endpoints[name] = runtime
        self.watched[name] = generation
        log.info("serving the ServingEndpoint %r (generation %s)", name, generation)

    def remove(self, name: str) -> None:
        if self.watched.pop(name, None) is None:
            return
        if name in self.files:
            self.state.endpoints[name] = self.files[name]
        else:
            self.state.endpoints.pop(name, None)
        log.info("no longer serving the ServingEndpoint %r", name)
