"""The proxy's client of the Kubernetes API server: TokenReview, SubjectAccessReview, and the API-key Secret watch.

Plain HTTPS over aiohttp (the proxy never imports a Kubernetes client library): the server from
``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT`` (or configured), the cluster CA and the pod's projected
ServiceAccount token from files. The token file is re-read every ``token_reload`` seconds, because the kubelet
rotates projected tokens. Every failure (unreachable, timeout, TLS, a non-2xx answer, an unreadable answer) is an
:class:`IdentityUnavailable` (503): the caller is never let in because the API server could not be asked.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from ...errors import IdentityUnavailable
from .bounded_read import read_bounded

log = logging.getLogger("modelgate.identity")

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
MAX_RESPONSE = 1024 * 1024
"""Largest review answer read (a review is a few hundred bytes)."""


@dataclass(frozen=True, slots=True)
class KubeApiSettings:
    server: str | None = None
    """``https://host:port``; default from ``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT``."""
    token_file: Path = SA_DIR / "token"
    ca_file: Path = SA_DIR / "ca.crt"
    timeout: float = 5.0
    """Seconds for one review, connect included."""
    token_reload: float = 60.0
    """Seconds between re-reads of the (rotating) token file."""

    def server_url(self) -> str:
        if self.server:
            return self.server.rstrip("/")
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise IdentityUnavailable("no Kubernetes API server configured (KUBERNETES_SERVICE_HOST is unset)")
        return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


class KubeApi:
    """Owns one ``aiohttp.ClientSession``; :meth:`close` it in the app's shutdown."""

    def __init__(self, settings: KubeApiSettings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._token: str | None = None
        self._token_read = -float("inf")
        self._ctx: ssl.SSLContext | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _open(self) -> aiohttp.ClientSession:
        if self._ctx is None:
            try:  # reads the CA file: in a thread, not on the event loop
                self._ctx = await asyncio.to_thread(ssl.create_default_context, cafile=str(self.settings.ca_file))
            except OSError as e:
                raise IdentityUnavailable(f"cannot read the cluster CA {self.settings.ca_file}: {e.strerror}") from None
        if self._session is None or self._session.closed:  # checked after the await: one session, never two
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ctx, limit=64),
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
                trust_env=False,
                raise_for_status=False,
            )
        return self._session

    async def _bearer(self) -> str:
        now = time.monotonic()
        if self._token is None or now - self._token_read >= self.settings.token_reload:
            try:
                raw = await asyncio.to_thread(self.settings.token_file.read_text)
            except OSError as e:
                raise IdentityUnavailable(
                    f"cannot read the proxy's ServiceAccount token {self.settings.token_file}: {e.strerror}"
                ) from None
            self._token, self._token_read = raw.strip(), now
        return self._token

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a review object to ``path`` (e.g. ``/apis/authentication.k8s.io/v1/tokenreviews``); its answer."""
        return await self._request("POST", path, str(body.get("kind", "review")), body)

    async def get(self, path: str, what: str) -> dict[str, Any]:
        """GET ``path`` (e.g. a label-selected list); ``what`` names it in errors."""
        return await self._request("GET", path, what, None)

    async def call(
        self, method: str, path: str, what: str, body: dict[str, Any] | None = None,
        *, content_type: str = "application/json",
    ) -> tuple[int, dict[str, Any]]:
        """Any request (the management API's reads and writes of resources): the API server's status and its JSON
        answer, a non-2xx one included (a ``Status`` object: the caller maps it). Transport failures, an answer
        that is too large or not a JSON object are :class:`IdentityUnavailable`."""
        status, raw = await self._send(method, path, what, body, content_type)
        if status == 401:
            self._token = None
        if raw is None:
            raise IdentityUnavailable(f"the Kubernetes API server's {what} answer is too large")
        return status, _object(raw, what)

    async def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self._bearer()}", "Content-Type": "application/json",
                "Accept": "application/json"}

    async def _request(self, method: str, path: str, kind: str, body: dict[str, Any] | None) -> dict[str, Any]:
        status, raw = await self._send(method, path, kind, body)
        self._check_status(status, kind)
        if raw is None:
            raise IdentityUnavailable(f"the Kubernetes API server's {kind} answer is too large")
        return _object(raw, kind)

    async def _send(
        self, method: str, path: str, what: str, body: dict[str, Any] | None, content_type: str = "application/json"
    ) -> tuple[int, bytes | None]:
        """One request: the status and the bounded body (None: over :data:`MAX_RESPONSE`); transport failures
        are :class:`IdentityUnavailable` naming ``what``."""
        url = self.settings.server_url() + path
        session = await self._open()
        headers = {**await self._headers(), "Content-Type": content_type}
        data = orjson.dumps(body) if body is not None else None
        try:
            async with session.request(method, url, data=data, headers=headers) as resp:
                return resp.status, await read_bounded(resp, MAX_RESPONSE)
        except TimeoutError:
            raise IdentityUnavailable(f"the Kubernetes API server did not answer the {what} in time") from None
        except (aiohttp.ClientError, OSError) as e:
            log.warning("%s failed: %s", what, type(e).__name__)
            raise IdentityUnavailable(f"the Kubernetes API server could not be reached for the {what}") from None

    def _check_status(self, status: int, kind: str) -> None:
        if status == 401:
            self._token = None  # re-read the (rotated) token on the next call
        if status not in (200, 201):
            log.warning("the API server answered %s to the proxy's %s", status, kind)
            raise IdentityUnavailable(f"the Kubernetes API server refused the proxy's {kind} (HTTP {status})")

    async def watch(self, path: str, what: str, *, timeout: float) -> AsyncIterator[dict[str, Any]]:
        """The events of a watch (``path`` with ``watch=1``), one JSON object a line, until the server ends it
        (``timeoutSeconds``) or ``timeout`` seconds pass without a byte. Failures are :class:`IdentityUnavailable`."""
        url = self.settings.server_url() + path
        session = await self._open()
        limits = aiohttp.ClientTimeout(total=None, sock_connect=self.settings.timeout, sock_read=timeout)
        try:
            async with session.get(url, headers=await self._headers(), timeout=limits) as resp:
                self._check_status(resp.status, what)
                while True:
                    line = await resp.content.readline()  # aiohttp bounds a line (64 KiB): longer ends the watch
                    if not line:
                        return
                    if line.strip():
                        yield _object(line, what)
        except TimeoutError:
            raise IdentityUnavailable(f"the Kubernetes API server's {what} went quiet") from None
        except (aiohttp.ClientError, OSError, ValueError) as e:
            log.warning("%s failed: %s", what, type(e).__name__)
            raise IdentityUnavailable(f"the Kubernetes API server's {what} broke off") from None


def _object(raw: bytes, kind: str) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise IdentityUnavailable(f"the Kubernetes API server's {kind} answer is not JSON") from None
    if not isinstance(data, dict):
        raise IdentityUnavailable(f"the Kubernetes API server's {kind} answer is not an object")
    return data
