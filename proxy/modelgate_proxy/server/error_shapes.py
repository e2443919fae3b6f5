"""The two error shapes, mapped once from :class:`GatewayError`.

- Databricks (``/serving-endpoints/{name}/invocations``): ``{"error_code": "...", "message": "..."}``.
- OpenAI (``/serving-endpoints/chat/completions`` etc.): ``{"error": {"message", "type", "param", "code"}}``,
  so the official client raises the typed exception that matches the status.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import GatewayError
from ..pipeline import Api


def error_payload(api: Api, err: GatewayError) -> dict[str, Any]:
    if api == "openai":
        return {"error": {"message": err.message, "type": err.error_type, "param": err.param, "code": err.openai_code}}
    return {"error_code": err.error_code, "message": err.message}


def error_body(api: Api, err: GatewayError) -> bytes:
    return orjson.dumps(error_payload(api, err))


def error_event(api: Api, err: GatewayError) -> bytes:
    """The SSE event that ends a stream which failed after it started."""
    return b"data: " + error_body(api, err) + b"\n\n"
