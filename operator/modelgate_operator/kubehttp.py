"""The reconciler's hot-path API calls (server-side apply of a child, merge-patch of a status) over aiohttp.

Every new endpoint costs four applies and a status PATCH; through lightkube/httpx each request spent most of its
operator CPU in the pure-Python HTTP stack (URL parsing, the connection pool's per-request scans). aiohttp does
the same request for about a third of that. Only kubeconfigs whose credentials fit in a TLS context and a fixed
header are served here (client certificates, a bearer token, a service-account token file, re-read when it
changes); anything else (exec plugins, basic auth) makes :func:`from_config` return None and the caller keeps
using lightkube for those calls too.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
from lightkube.config.kubeconfig import SingleConfig


class HttpError(Exception):
    """A non-2xx answer (``code``; ``reason`` and ``message`` from the server's Status) or no answer (code 0)."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        self.code = code
        self.reason = reason
        self.message = message
        super().__init__(f"{code} {reason}")


class _TokenFile:
    """A token file (projected service-account tokens are rotated): re-read when its mtime changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._mtime = -1.0
        self._token = ""

    def header(self) -> str:
        mtime = os.stat(self.path).st_mtime
        if mtime != self._mtime:
            with open(self.path, encoding="utf-8") as fh:
                self._token = fh.read().strip()
            self._mtime = mtime
        return f"Bearer {self._token}"


class FastPath:
    """A keep-alive aiohttp session against one API server (created on first use, inside the event loop)."""

    def __init__(
        self, server: str, tls: ssl.SSLContext | None, *, token: str | None = None, token_file: str | None = None,
        connections: int = 64, timeout: float = 30.0,
    ) -> None:  # fmt: skip
        self.server = server.rstrip("/")
        self._tls = tls
        self._token = f"Bearer {token}" if token else None
        self._token_file = _TokenFile(token_file) if token_file else None
        self._connections = connections
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _headers(self, content_type: str) -> dict[str, str]:
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        if self._token_file is not None:
            headers["Authorization"] = self._token_file.header()
        elif self._token is not None:
            headers["Authorization"] = self._token
        return headers

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._connections, ssl=self._tls if self._tls is not None else False, keepalive_timeout=60.0
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self._timeout)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def patch(
        self, path: str, body: Mapping[str, Any], content_type: str, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """PATCH ``path`` (already quoted) with a JSON body; the server's answer as a dict."""
        return await self.request("PATCH", path, body, content_type, params)

    async def request(
        self, method: str, path: str, body: Mapping[str, Any], content_type: str,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """``method`` ``path`` (already quoted) with a JSON body; the server's answer as a dict."""
        data = json.dumps(body, separators=(",", ":"))
        try:
            async with self._open().request(
                method, self.server + path, data=data, params=params, headers=self._headers(content_type)
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise HttpError(0, type(exc).__name__, "") from None
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        if status >= 300:
            raise HttpError(status, str(answer.get("reason") or ""), str(answer.get("message") or ""))
        return answer


def object_path(api_version: str, plural: str, namespace: str, name: str, subresource: str = "") -> str:
    """The URL path of a namespaced object (``v1`` → ``/api/v1``, ``group/version`` → ``/apis/group/version``)."""
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    path = f"{prefix}/namespaces/{quote(namespace, safe='')}/{plural}/{quote(name, safe='')}"
    return f"{path}/{subresource}" if subresource else path


def from_config(
    config: SingleConfig, tls: ssl.SSLContext, *, connections: int, timeout: float
) -> FastPath | None:
    """A fast path for this kubeconfig context, or None when its credentials need lightkube (exec, basic auth)."""
    user = config.user
    if user is None or user.exec or user.username or user.password or user.auth_provider:
        return None
    server = config.cluster.server
    tls_or_none = tls if server.startswith("https") else None
    if user.token_file:
        return FastPath(server, tls_or_none, token_file=str(config.abs_file(user.token_file)),
                        connections=connections, timeout=timeout)  # fmt: skip
    return FastPath(server, tls_or_none, token=user.token, connections=connections, timeout=timeout)
