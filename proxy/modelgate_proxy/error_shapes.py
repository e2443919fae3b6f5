"""The error shapes, mapped once from :class:`GatewayError`.

- Databricks (``/serving-endpoints/{name}/invocations``): ``{"error_code": "...", "message": "..."}``.
- OpenAI (``/serving-endpoints/chat/completions`` etc.): ``{"error": {"message", "type", "param", "code"}}``,
  so the official client raises the typed exception that matches the status.
- MLflow AI Gateway (``/endpoints/{name}/invocations``, ``/api/2.0/endpoints/...``): FastAPI's
  ``{"detail": "..."}``, as the MLflow gateway answers provider and lookup errors.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

from .errors import GatewayError

Shape = Literal["databricks", "openai", "mlflow"]
"""The error shapes; a query API's ``Api`` is one of them."""


def error_payload(api: Shape, err: GatewayError) -> dict[str, Any]:
    if api == "openai":
        return {"error": {"message": err.message, "type": err.error_type, "param": err.param, "code": err.openai_code}}
    if api == "mlflow":
        return {"detail": err.message}
    return {"error_code": err.error_code, "message": err.message}


def error_body(api: Shape, err: GatewayError) -> bytes:
    return orjson.dumps(error_payload(api, err))


def error_event(api: Shape, err: GatewayError) -> bytes:
    """The SSE event that ends a stream which failed after it started."""
    return b"data: " + error_body(api, err) + b"\n\n"
