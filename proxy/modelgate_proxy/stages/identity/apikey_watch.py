"""API keys from labelled Secrets in one namespace, kept current by a list + watch on the API server.

Lists ``serving.modelgate.io/api-key=true`` Secrets, then watches them from the list's ``resourceVersion``:
``ADDED``/``MODIFIED`` replace a Secret's record, ``DELETED`` (or losing the label, which the label-selected watch
reports as a deletion) removes it, so deleting a key's Secret revokes it as soon as the event arrives. The watch is
re-opened from the last ``resourceVersion`` when the server ends it, and re-listed after ``410 Gone``.

While the watch is down the store may miss a revocation: after ``max_stale`` seconds without a working watch,
:attr:`ApiKeyStore.current_until` passes and keys are answered 503, never checked against an old list.
Plain HTTPS through :class:`KubeApi` (no Kubernetes client library). The proxy's ServiceAccount needs ``get``,
``list`` and ``watch`` on ``secrets`` in the namespace for this (docs/authentication.md weighs that).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any
from urllib.parse import quote

from ...errors import IdentityUnavailable
from .apikey_files import MAX_KEYS, record_from_secret
from .apikeys import LABEL, ApiKeyRecord, ApiKeyStore, InvalidApiKeyRecord
from .kubeapi import KubeApi

log = logging.getLogger("modelgate.identity")


class _Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


class ApiKeySecretWatch:
    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        store: ApiKeyStore | None = None,
        *,
        watch_seconds: int = 240,
        max_stale: float = 10.0,
        max_backoff: float = 5.0,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.store = store or ApiKeyStore()
        self.store.current_until = -float("inf")  # nothing is known before the first list
        self.watch_seconds, self.max_stale, self.max_backoff = watch_seconds, max_stale, max_backoff
        self._by_secret: dict[str, ApiKeyRecord] = {}
        self._version = ""
        self._task: asyncio.Task[None] | None = None
        self.lists = 0
        """Lists so far (a relist after 410 or an outage counts)."""

    @property
    def _base(self) -> str:
        return f"/api/v1/namespaces/{quote(self.namespace, safe='')}/secrets?labelSelector={quote(LABEL + '=true')}"

    async def start(self) -> None:
        """List once (a failure leaves the store not current: keys get 503 until a list works), then watch."""
        with contextlib.suppress(IdentityUnavailable):
            await self._list()
        self._task = asyncio.create_task(self._run(), name=f"api-key-watch-{self.namespace}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _list(self) -> None:
        listed = await self.api.get(self._base, "list of API-key Secrets")
        items = listed.get("items")
        meta = listed.get("metadata")
        self._by_secret = {}
        for item in items if isinstance(items, list) else []:
            self._apply("ADDED", item)
        self._version = str(meta.get("resourceVersion", "")) if isinstance(meta, dict) else ""
        self.lists += 1
        self._publish(current=True)

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                if self.store.current_until != float("inf"):
                    await self._list()
                await self._watch()
                backoff = 0.1
            except _Gone:
                self._publish(current=False)
                self._version = ""
                with contextlib.suppress(IdentityUnavailable):
                    await self._list()
            except IdentityUnavailable as e:
                self._publish(current=False)
                log.warning("API keys in %s: %s; retrying in %.1f s", self.namespace, e, backoff)
                await asyncio.sleep(backoff * (0.5 + random.random() / 2))  # noqa: S311 - jitter, not a secret
                backoff = min(backoff * 2, self.max_backoff)

    async def _watch(self) -> None:
        path = (f"{self._base}&watch=1&allowWatchBookmarks=true&timeoutSeconds={self.watch_seconds}"
                f"&resourceVersion={quote(self._version)}")
        async for event in self.api.watch(path, "watch of API-key Secrets", timeout=self.watch_seconds + 30):
            kind, obj = event.get("type"), event.get("object")
            if not isinstance(obj, dict):
                continue
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise _Gone
                raise IdentityUnavailable(f"the API-key Secret watch failed ({obj.get('code')})")
            meta = obj.get("metadata")
            if isinstance(meta, dict) and meta.get("resourceVersion"):
                self._version = str(meta["resourceVersion"])
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                self._apply(str(kind), obj)
                self._publish(current=True)

    def _apply(self, kind: str, secret: dict[str, Any]) -> None:
        meta = secret.get("metadata")
        name = str(meta.get("name", "")) if isinstance(meta, dict) else ""
        if kind == "DELETED":
            self._by_secret.pop(name, None)
            return
        try:
            # items of a list carry no ``kind``; everything this watch sees is a Secret
            record = record_from_secret({**secret, "kind": "Secret"}, source=f"{self.namespace}/{name}")
        except InvalidApiKeyRecord as e:
            log.warning("API keys: Secret %s/%s is not a valid API-key Secret (%s); ignored", self.namespace, name, e)
            record = None
        if record is None:
            self._by_secret.pop(name, None)
        elif name in self._by_secret or len(self._by_secret) < MAX_KEYS:
            self._by_secret[name] = record
        else:
            log.warning("API keys: more than %d in %s; Secret %s ignored", MAX_KEYS, self.namespace, name)

    def _publish(self, *, current: bool) -> None:
        if current:
            ids: dict[str, ApiKeyRecord] = {}
            dupes = set()
            for record in self._by_secret.values():
                if record.key_id in ids:
                    dupes.add(record.key_id)
                ids[record.key_id] = record
            self.store.replace(r for r in ids.values() if r.key_id not in dupes)
            self.store.current_until = float("inf")
        elif self.store.current_until == float("inf"):
            self.store.current_until = time.monotonic() + self.max_stale
