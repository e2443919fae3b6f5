"""A management request's JSON body, read bounded (:data:`MAX_MANAGEMENT_BODY`), and the handler type the
management routes share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request

from ...errors import MalformedRequest, PayloadTooLarge
from ...exchange import Principal

MAX_MANAGEMENT_BODY = 1024 * 1024
"""The largest management request body (a create body is a few KiB)."""

Handler = Callable[[Request, Principal], Awaitable[Any]]


async def json_body(request: Request) -> Any:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_MANAGEMENT_BODY:
            raise PayloadTooLarge(f"the request body is over {MAX_MANAGEMENT_BODY} bytes")
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks) or b"{}")
    except orjson.JSONDecodeError:
        raise MalformedRequest("the request body is not JSON") from None
