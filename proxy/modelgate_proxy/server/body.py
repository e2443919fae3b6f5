"""Reading a request body: content type, size limit, JSON object."""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import MalformedRequest, PayloadTooLarge, UnsupportedMediaType
from .asgi import Receive, Scope

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
"""16 MiB: room for several base64 images in one chat request."""


class ClientGone(Exception):
    """The caller disconnected before its body arrived."""


def _check_headers(scope: Scope, limit: int) -> None:
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


async def read_json_object(scope: Scope, receive: Receive, limit: int) -> dict[str, Any]:
    """The body as a JSON object; 415 for another content type, 413 above ``limit``, 400 if not an object.
    A request without a content type is read as JSON."""
    _check_headers(scope, limit)
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
            parts.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(parts)
    if len(body) > limit:
        raise PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes")
    if not body:
        raise MalformedRequest("the request body is empty; send a JSON object")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest(f"the request body is not valid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(data, dict):
        raise MalformedRequest("the request body must be a JSON object")
    return data
