"""Replies and request checks shared by the Starlette stand-ins of the chat APIs (AI21, Anthropic, Cohere).

Each of them scripts its misbehaviour the same way: a last user message ``trigger:<case>`` (see
:func:`trigger_of`) answers with an error status or a malformed body instead of the scripted answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers)


def sse_response(events: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream")


def typed_sse(event: dict[str, Any]) -> bytes:
    """One SSE event named by the payload's ``type`` (``event: <type>`` then ``data: <json>``)."""
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def trigger_of(last_user_text: str) -> str:
    """The ``<case>`` of a ``trigger:<case>`` message, or ``""`` for any other text."""
    return last_user_text.removeprefix("trigger:") if last_user_text.startswith("trigger:") else ""


def bearer_matches(header: str, key: str) -> bool:
    """Whether an ``Authorization`` header is ``Bearer <key>`` (the scheme in any case, as HTTP allows)."""
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and token == key
