"""The base of the stand-ins written as bare ASGI apps, and the request reading they share.

:class:`ASGIStandIn` answers the lifespan protocol (so ``serve_app`` can start and stop it) and hands every HTTP
request to :meth:`ASGIStandIn.http`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import orjson

from .fake_llm import Receive, Scope, Send, Stats, read_body


class ASGIStandIn(ABC):
    @property
    def app(self) -> object:
        """The ASGI app (the stand-in itself)."""
        return self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await self.http(scope, receive, send)

    @abstractmethod
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one HTTP request."""


def request_headers(scope: Scope) -> dict[str, str]:
    """The request's headers, names in lower case."""
    return {k.decode().lower(): v.decode() for k, v in scope["headers"]}


def json_or_none(raw: bytes) -> Any:
    """The parsed JSON body, or None when it is empty or not JSON."""
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None


async def read_request(scope: Scope, receive: Receive, stats: Stats) -> tuple[dict[str, str], Any]:
    """The request's headers (see :func:`request_headers`) and body (see :func:`json_or_none`), recorded in
    ``stats`` with the path and query string."""
    headers = request_headers(scope)
    body = json_or_none(await read_body(receive))
    stats.requests.append({"path": scope["path"], "query": scope["query_string"].decode(), "headers": headers,
                           "body": body})
    return headers, body


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None without one."""
    auth = headers.get("authorization", "")
    return auth[7:] if auth.startswith("Bearer ") else None
