"""Hand-written checks of the query body: the task's required field and the types of the common parameters.

Only what the proxy itself relies on is checked (no model validation on the hot path); every other parameter
passes through to the provider unchanged, which judges it.
"""

from __future__ import annotations

from typing import Any

from ..errors import BadRequest, UnsupportedTask
from ..spec import Task

TASK_FIELD: dict[Task, str] = {"llm/v1/chat": "messages", "llm/v1/completions": "prompt", "llm/v1/embeddings": "input"}
FIELD_TASK: dict[str, Task] = {v: k for k, v in TASK_FIELD.items()}

_NUMBER = "a number"
_INTEGER = "an integer"


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_TYPED: tuple[tuple[str, Any, str], ...] = (
    ("max_tokens", _is_int, _INTEGER),
    ("max_completion_tokens", _is_int, _INTEGER),
    ("n", _is_int, _INTEGER),
    ("temperature", _is_number, _NUMBER),
    ("top_p", _is_number, _NUMBER),
    ("presence_penalty", _is_number, _NUMBER),
    ("frequency_penalty", _is_number, _NUMBER),
    ("seed", _is_int, _INTEGER),
    ("stop", lambda v: isinstance(v, str) or (isinstance(v, list) and all(isinstance(s, str) for s in v)),
     "a string or a list of strings"),
    ("stream_options", lambda v: isinstance(v, dict), "an object"),
    ("tools", lambda v: isinstance(v, list), "a list"),
    ("logit_bias", lambda v: isinstance(v, dict), "an object"),
)


def check_task_field(task: Task, payload: dict[str, Any], endpoint: str) -> None:
    """The body has the field of ``task``; a body for another task is a 400 that says so."""
    field = TASK_FIELD[task]
    if field in payload:
        return
    for other, other_task in FIELD_TASK.items():
        if other in payload:
            raise UnsupportedTask(
                f"the endpoint {endpoint!r} serves {task} but this request is for {other_task} "
                f"(it has {other!r}); send {field!r} instead",
                param=other,
            )
    raise BadRequest(f"missing required field {field!r} (the endpoint {endpoint!r} serves {task})", param=field)


def check_payload(task: Task, payload: dict[str, Any]) -> bool:
    """Check the fields the proxy relies on; returns whether the caller asked for a stream."""
    if task == "llm/v1/chat":
        messages = payload["messages"]
        if not isinstance(messages, list) or not messages:
            raise BadRequest("'messages' must be a non-empty list of message objects", param="messages")
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                raise BadRequest(f"'messages[{i}]' must be an object", param=f"messages[{i}]")
            role = message.get("role")
            if not isinstance(role, str):
                raise BadRequest(f"'messages[{i}].role' must be a string", param=f"messages[{i}].role")
            content = message.get("content")
            if content is not None and not isinstance(content, str | list):
                raise BadRequest(
                    f"'messages[{i}].content' must be a string or a list of content parts",
                    param=f"messages[{i}].content",
                )
    elif task == "llm/v1/completions":
        prompt = payload["prompt"]
        if not isinstance(prompt, str | list) or (isinstance(prompt, list) and not prompt):
            raise BadRequest("'prompt' must be a string or a non-empty list", param="prompt")
    else:
        data = payload["input"]
        if not isinstance(data, str | list) or (isinstance(data, list) and not data):
            raise BadRequest("'input' must be a string or a non-empty list", param="input")
    for name, ok, expected in _TYPED:
        value = payload.get(name)
        if value is not None and not ok(value):
            raise BadRequest(f"'{name}' must be {expected}", param=name)
    stream = payload.get("stream")
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be a boolean", param="stream")
    if stream and task == "llm/v1/embeddings":
        raise BadRequest("embeddings cannot be streamed", param="stream")
    return stream


def merge_extra_params(payload: dict[str, Any]) -> None:
    """Databricks' ``extra_params`` join the top level (top-level fields win)."""
    extra = payload.pop("extra_params", None)
    if extra is None:
        return
    if not isinstance(extra, dict):
        raise BadRequest("'extra_params' must be an object", param="extra_params")
    for key, value in extra.items():
        payload.setdefault(key, value)


MAX_CLIENT_REQUEST_ID = 256


def take_tracking_fields(payload: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    """Remove Databricks' ``client_request_id`` (a string) and ``usage_context`` (an object of strings) from the
    body: they are for usage records and payload logs, not for the provider."""
    client_request_id = payload.pop("client_request_id", None)
    usage_context = payload.pop("usage_context", None)
    if client_request_id is not None and (
            not isinstance(client_request_id, str) or len(client_request_id) > MAX_CLIENT_REQUEST_ID):
        raise BadRequest(f"'client_request_id' must be a string of at most {MAX_CLIENT_REQUEST_ID} characters",
                         param="client_request_id")
    if usage_context is not None and (
            not isinstance(usage_context, dict) or not all(isinstance(v, str) for v in usage_context.values())):
        raise BadRequest("'usage_context' must be an object whose values are strings", param="usage_context")
    return client_request_id, usage_context
