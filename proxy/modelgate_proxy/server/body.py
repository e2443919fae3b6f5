"""Reading a request body: content type, size limit, JSON object."""

from __future__ import annotations

from typing import Any

import orjson

from ..budget import Ticket
from ..errors import MalformedRequest, PayloadTooLarge, UnsupportedMediaType
from .asgi import Receive, Scope

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
"""16 MiB: room for several base64 images in one chat request."""

MAX_JSON_DEPTH = 128
"""Most levels of nested arrays and objects in a request body (the body object itself is level 1). Deeper bodies
are refused at parse time: the JSON encoder the proxy uses to call providers stops at 254 levels."""


class ClientGone(Exception):
    """The caller disconnected before its body arrived."""


def _check_headers(scope: Scope, limit: int) -> int | None:
    """The body's ``Content-Length`` when it has one, after checking it and the content type."""
    declared = None
    for key, value in scope["headers"]:
        if key == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            if media != b"application/json" and not media.endswith(b"+json"):
                raise UnsupportedMediaType(
                    f"the content type must be application/json, not {media.decode('latin-1')[:100]!r}"
                )
        elif key == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise MalformedRequest("the Content-Length header is not a number") from None
            if length > limit:
                raise PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes")
            declared = length
    return declared


async def read_json_object(scope: Scope, receive: Receive, limit: int, ticket: Ticket) -> dict[str, Any]:
    """The body as a JSON object; 415 for another content type, 413 above ``limit``, 400 if not an object or
    nested deeper than :data:`MAX_JSON_DEPTH`, 503 when its bytes do not fit the in-flight budget (``ticket``).
    A request without a content type is read as JSON."""
    declared = _check_headers(scope, limit)
    if declared is not None:
        ticket.take(declared, "this request body")
    message = await receive()
    if message["type"] != "http.request":
        raise ClientGone()
    body: bytes = message.get("body", b"")
    if message.get("more_body", False):
        parts, size = [body], len(body)
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes")
            if declared is None:
                ticket.take(len(chunk), "this request body")
            parts.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(parts)
        del parts  # the chunks' bytes are garbage now; not held beside the joined copy while it is parsed
    if len(body) > limit:
        raise PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes")
    if not body:
        raise MalformedRequest("the request body is empty; send a JSON object")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "recursion" in exc.msg or "depth" in exc.msg:
            raise _too_deep_error() from None
        raise MalformedRequest(f"the request body is not valid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(data, dict):
        raise MalformedRequest("the request body must be a JSON object")
    # Only a body with more brackets than the limit can be too deep; counting them costs far less than a walk.
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and too_deep(data, MAX_JSON_DEPTH):
        raise _too_deep_error()
    return data


def _too_deep_error() -> MalformedRequest:
    return MalformedRequest(f"the request body is nested too deep (more than {MAX_JSON_DEPTH} levels of arrays and "
                            "objects)")


def too_deep(data: Any, limit: int) -> bool:
    """Whether ``data`` nests arrays and objects more than ``limit`` levels deep (level by level, no recursion)."""
    level = [data]
    depth = 1
    while level:
        if depth > limit:
            return True
        below = []
        for value in level:
            for child in value.values() if isinstance(value, dict) else value:
                if isinstance(child, dict | list):
                    below.append(child)
        level = below
        depth += 1
    return False
