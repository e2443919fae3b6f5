"""Stand-in for AI21's Jamba chat completions (``POST /studio/v1/chat/completions``), plain and streamed.

Written from AI21's published reference:
- request/response and streaming: https://docs.ai21.com/reference/jamba-1-6-api-ref
  (Bearer auth; model, messages with system/user/assistant/tool roles, tools, documents, response_format,
  max_tokens up to 4096, temperature 0.0 to 2.0, top_p 0 to 1, stop, n (1 to 16; "n must be 1 when
  stream = True"), stream; answers without ``object`` /
  ``created`` / ``model``, streamed ``data: <chunk>`` lines ending with ``data: [DONE]``, usage in the chunks)
- Jurassic-2 ``complete`` endpoints retired (November 14, 2024): https://docs.ai21.com/docs/jurassic-2-models
  — this stand-in serves no completion endpoint, as the real API no longer does.
Error bodies: AI21's API is FastAPI-based and answers ``{"detail": ...}`` (validation errors as a ``detail``
list with ``loc``/``msg``/``type``); the exact 401 text is not published, the one used here is ours. The
stand-in is stricter than documented in one respect: unknown top-level fields are refused (422), so an OpenAI
parameter the translator should have dropped or renamed cannot slip through unnoticed.

Auth: ``Authorization: Bearer <key>`` must be present and valid (401). Requests are recorded in
``app.state.requests``. Scripted answers: with tools (and no tool result yet) the model calls the first tool
(as in the AI21 SDK's recorded ``get_delivery_date`` example); otherwise it says :data:`REPLY`. A last user
message ``trigger:<case>`` answers with ``429``, ``500`` or a malformed body (``malformed``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .replies import bearer_matches, json_response, sse_response, trigger_of

API_KEY = "ai21-standin-key-abcdef"
REPLY = "Hello! I am Jamba."
TOOL_CALL_ID = "call_62136354"
FIELDS = {"model", "messages", "tools", "documents", "response_format", "max_tokens", "temperature", "top_p", "stop", "n", "stream"}


def _detail(status: int, detail: Any, headers: dict[str, str] | None = None) -> Response:
    return json_response({"detail": detail}, status, headers)


def _invalid(field: str, message: str, kind: str = "value_error") -> Response:
    return _detail(422, [{"loc": ["body", field], "msg": message, "type": kind}])


def _check(body: Any) -> Response | None:
    if not isinstance(body, dict):
        return _invalid("__root__", "value is not a valid dict", "type_error.dict")
    for field in ("model", "messages"):
        if field not in body:
            return _invalid(field, "field required", "value_error.missing")
    for field in body:
        if field not in FIELDS:
            return _invalid(field, "extra fields not permitted", "value_error.extra")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return _invalid("messages", "ensure this value has at least 1 items")
    for message in messages:
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("system", "user", "assistant", "tool"):
            return _invalid("messages", f"unexpected role {role!r}")
        content = message.get("content")
        if not (isinstance(content, str) or (role == "assistant" and content is None and message.get("tool_calls"))):
            return _invalid("messages", "content must be a string")
        if role == "tool" and not message.get("tool_call_id"):
            return _invalid("messages", "tool messages need a tool_call_id")
    temperature, top_p, max_tokens = body.get("temperature"), body.get("top_p"), body.get("max_tokens")
    if temperature is not None and not 0 <= temperature <= 2:
        return _invalid("temperature", "ensure this value is less than or equal to 2.0")
    if top_p is not None and not 0 <= top_p <= 1:
        return _invalid("top_p", "ensure this value is less than or equal to 1.0")
    if max_tokens is not None and not 0 <= max_tokens <= 4096:
        return _invalid("max_tokens", "ensure this value is less than or equal to 4096")
    n = body.get("n")
    if n is not None and not (isinstance(n, int) and 1 <= n <= 16):
        return _invalid("n", "ensure this value is between 1 and 16")
    if n is not None and n > 1 and body.get("stream"):
        return _invalid("n", "n must be 1 when stream is true")
    return None


def _last_user_text(body: dict[str, Any]) -> str:
    content = body["messages"][-1].get("content")
    return content if isinstance(content, str) else ""


def _answer(body: dict[str, Any]) -> dict[str, Any]:
    usage = {"prompt_tokens": 144, "completion_tokens": 14, "total_tokens": 158}
    if body.get("tools") and body["messages"][-1]["role"] != "tool":
        name = body["tools"][0]["function"]["name"]
        call = {"id": TOOL_CALL_ID, "type": "function", "function": {"name": name, "arguments": '{"order_id":"order_12345"}'}}
        message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [call]}
        finish = "tool_calls"
    else:
        message, finish = {"role": "assistant", "content": REPLY}, "stop"
    choice = {"index": 0, "message": message, "finish_reason": finish}
    return {"id": "chat-cc8ce5c05f1d4ed9b722123ac4a0f267", "choices": [choice], "usage": usage, "meta": {"requestDurationMillis": 236}}


def _data(chunk: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


async def _chunks(answer: dict[str, Any]) -> AsyncIterator[bytes]:
    id_, message = answer["id"], answer["choices"][0]["message"]
    opening = {"prompt_tokens": 144, "total_tokens": 144, "completion_tokens": 0}
    yield _data({"id": id_, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}], "usage": opening})
    if message.get("tool_calls"):
        calls = [{"index": 0, **message["tool_calls"][0]}]
        yield _data({"id": id_, "choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": None}]})
    else:
        words = message["content"].split(" ")
        for n, word in enumerate(words):
            text = word if n == len(words) - 1 else word + " "
            yield _data({"id": id_, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})
    final = answer["choices"][0]["finish_reason"]
    yield _data({"id": id_, "choices": [{"index": 0, "delta": {}, "finish_reason": final}], "usage": answer["usage"]})
    yield b"data: [DONE]\n\n"


async def chat_completions(request: Request) -> Response:
    if not bearer_matches(request.headers.get("authorization", ""), API_KEY):
        return _detail(401, "Forbidden: Bad or missing API token.")
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return _invalid("__root__", "Expecting value: request body is not valid JSON", "value_error.jsondecode")
    problem = _check(body)
    if problem:
        return problem
    request.app.state.requests.append(body)
    trigger = trigger_of(_last_user_text(body))
    if trigger == "429":
        return _detail(429, "Too many requests", {"retry-after": "2"})
    if trigger == "500":
        return _detail(500, "Internal Server Error")
    if trigger == "malformed":
        return Response(b'{"id": "chat-1", "choices": "nope"}', media_type="application/json")
    answer = _answer(body)
    if body.get("stream"):
        return sse_response(_chunks(answer))
    return json_response(answer)


def make_app() -> Starlette:
    app = Starlette(routes=[Route("/studio/v1/chat/completions", chat_completions, methods=["POST"])])
    app.state.requests = []
    return app
