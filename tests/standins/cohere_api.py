"""Stand-in for Cohere's v2 API: ``POST /v2/chat`` (plain and streamed) and ``POST /v2/embed``.

Written from Cohere's published reference:
- chat: https://docs.cohere.com/reference/chat
- chat stream events: https://docs.cohere.com/reference/chat-stream
- embed: https://docs.cohere.com/reference/embed
- errors (``{"message": ...}`` bodies; 498 for an invalid token is documented too): https://docs.cohere.com/reference/errors
The 401 text "invalid api token" is the API's own, as reported verbatim in public bug reports; the other
messages follow the API's "invalid request: ..." style.

Auth as the API does it: ``Authorization: Bearer <key>`` (the scheme is matched case-insensitively, Cohere's
curl examples write ``bearer``). Bodies are validated as the API rejects them: required fields, roles,
documented ranges (``p`` 0.01 to 0.99, ``k`` 0 to 500), ``tool_choice`` ``REQUIRED``/``NONE``, unknown fields
(so an untranslated OpenAI name like ``top_p`` or ``stop`` is refused), ``input_type`` required for embed.
Requests are recorded in ``app.state.requests``.

Scripted answers: with tools (and no tool result yet) the model calls the first tool, as in the reference's
tool-use stream example; otherwise it says :data:`REPLY`. A last user message ``trigger:<case>`` answers with
an error (``429``, ``500``), a malformed body (``malformed``), a ``message-end`` carrying an error
(``stream-error``), the same with every event in one write (``stream-error-burst``) or an answer whose
``finish_reason`` is ``ERROR`` (``finish-error``; documented with ``TIMEOUT`` as a failed generation).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .replies import bearer_matches, json_response, sse_response, trigger_of, typed_sse

API_KEY = "co-standin-key-0123456789"
REPLY = "LLMs stand for Large Language Models."
TOOL_CALL_ID = "query_daily_sales_report_j3f0adww9pmr"
TOOL_ARGUMENT_FRAGMENTS = ['{"', 'day": "', "2023-09-29", '"}']

CHAT_FIELDS = {
    "model", "messages", "stream", "tools", "strict_tools", "documents", "citation_options", "response_format",
    "safety_mode", "max_tokens", "stop_sequences", "temperature", "seed", "frequency_penalty", "presence_penalty",
    "k", "p", "logprobs", "tool_choice", "thinking", "priority",
}  # fmt: skip
EMBED_FIELDS = {"model", "texts", "images", "inputs", "input_type", "embedding_types", "truncate", "max_tokens", "output_dimension", "priority"}
INPUT_TYPES = {"search_document", "search_query", "classification", "clustering", "image"}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"message": message}, status, headers)


def _auth(request: Request) -> Response | None:
    header = request.headers.get("authorization")
    if not header:
        return _error(401, "no api key supplied")
    if not bearer_matches(header, API_KEY):
        return _error(401, "invalid api token")
    return None


async def _body(request: Request, fields: set[str]) -> tuple[dict[str, Any] | None, Response | None]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return None, _error(400, "invalid request: could not parse the request body as JSON")
    if not isinstance(body, dict):
        return None, _error(400, "invalid request: the request body must be an object")
    for field in body:
        if field not in fields:
            return None, _error(400, f"invalid request: unknown field: parameter '{field}' is not a valid field")
    if "model" not in body:
        return None, _error(400, "invalid request: model is required")
    return body, None


def _check_chat(body: dict[str, Any]) -> str | None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "invalid request: messages must contain at least one message"
    for message in messages:
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("system", "user", "assistant", "tool"):
            return f"invalid request: invalid role {role!r}, must be one of system, user, assistant, tool"
        if role == "tool" and not message.get("tool_call_id"):
            return "invalid request: tool messages must have a tool_call_id"
        if role == "assistant" and not (message.get("content") or message.get("tool_calls") or message.get("tool_plan")):
            return "invalid request: assistant messages must have content or tool_calls"
    p, k, temperature = body.get("p"), body.get("k"), body.get("temperature")
    if p is not None and not 0.01 <= p <= 0.99:
        return "invalid request: p must be between 0.01 and 0.99"
    if k is not None and not 0 <= k <= 500:
        return "invalid request: k must be between 0 and 500"
    if temperature is not None and temperature < 0:
        return "invalid request: temperature must be non-negative"
    if body.get("tool_choice") not in (None, "REQUIRED", "NONE"):
        return "invalid request: tool_choice must be one of REQUIRED, NONE"
    stops = body.get("stop_sequences")
    if stops is not None and not (isinstance(stops, list) and all(isinstance(s, str) for s in stops)):
        return "invalid request: stop_sequences must be a list of strings"
    return None


def _last_user_text(body: dict[str, Any]) -> str:
    content = body["messages"][-1].get("content")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def _wants_tool(body: dict[str, Any]) -> bool:
    return bool(body.get("tools")) and body.get("tool_choice") != "NONE" and body["messages"][-1]["role"] != "tool"


def _usage(output: int) -> dict[str, Any]:
    return {"billed_units": {"input_tokens": 5, "output_tokens": output}, "tokens": {"input_tokens": 71, "output_tokens": output}}


def _response(body: dict[str, Any]) -> dict[str, Any]:
    if _wants_tool(body):
        name = body["tools"][0]["function"]["name"]
        call = {"id": TOOL_CALL_ID, "type": "function", "function": {"name": name, "arguments": "".join(TOOL_ARGUMENT_FRAGMENTS)}}
        message: dict[str, Any] = {"role": "assistant", "tool_plan": "I will look up the report.", "tool_calls": [call]}
        return {"id": "2edfdf70-019c-4f7a-be20-3cdbfaa3dca6", "message": message, "finish_reason": "TOOL_CALL", "usage": _usage(84)}
    content = [{"type": "text", "text": REPLY}]
    return {"id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4", "message": {"role": "assistant", "content": content}, "finish_reason": "COMPLETE", "usage": _usage(9)}


async def _events(response: dict[str, Any], fail: bool) -> AsyncIterator[bytes]:
    yield typed_sse({"type": "message-start", "id": response["id"], "delta": {"message": {"role": "assistant"}}})
    message = response["message"]
    if message.get("tool_calls"):
        yield typed_sse({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": message["tool_plan"]}}})
        call = message["tool_calls"][0]
        opening = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
        yield typed_sse({"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": opening}}})
        for fragment in TOOL_ARGUMENT_FRAGMENTS:
            delta = {"message": {"tool_calls": {"function": {"arguments": fragment}}}}
            yield typed_sse({"type": "tool-call-delta", "index": 0, "delta": delta})
        yield typed_sse({"type": "tool-call-end", "index": 0})
    else:
        yield typed_sse({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}})
        words = message["content"][0]["text"].split(" ")
        for n, word in enumerate(words):
            text = word if n == len(words) - 1 else word + " "
            yield typed_sse({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": text}}}})
        yield typed_sse({"type": "content-end", "index": 0})
    if fail:
        yield typed_sse({"type": "message-end", "delta": {"error": "internal error during generation"}})
        return
    yield typed_sse({"type": "message-end", "delta": {"finish_reason": response["finish_reason"], "usage": response["usage"]}})


async def chat(request: Request) -> Response:
    denied = _auth(request)
    if denied:
        return denied
    body, problem = await _body(request, CHAT_FIELDS)
    if problem or body is None:
        return problem or _error(400, "invalid request")
    message = _check_chat(body)
    if message:
        return _error(400, message)
    request.app.state.requests.append(body)
    trigger = trigger_of(_last_user_text(body))
    if trigger == "429":
        return _error(429, "You are using a Trial key, which is limited to 10 API calls / minute.", {"retry-after": "3"})
    if trigger == "500":
        return _error(500, "internal server error, this has been reported to our developers")
    if trigger == "malformed":
        return Response(b"<html>gateway</html>", media_type="application/json")
    response = _response(body)
    if trigger == "finish-error":
        response["finish_reason"] = "ERROR"
    if body.get("stream"):
        if trigger == "stream-error-burst":
            return sse_response(_burst(_events(response, True)))
        return sse_response(_events(response, trigger == "stream-error"))
    return json_response(response)


async def _burst(events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``events`` in one write."""
    yield b"".join([event async for event in events])


def vector(text: str) -> list[float]:
    """The stand-in's deterministic 3-dimensional embedding of ``text``."""
    return [float(len(text)), float(sum(map(ord, text)) % 97) / 97.0, 0.5]


async def embed(request: Request) -> Response:
    denied = _auth(request)
    if denied:
        return denied
    body, problem = await _body(request, EMBED_FIELDS)
    if problem or body is None:
        return problem or _error(400, "invalid request")
    texts = body.get("texts")
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        return _error(400, "invalid request: texts must be a non-empty list of strings")
    if body.get("input_type") not in INPUT_TYPES:
        return _error(400, "invalid request: valid input_type must be provided with the provided model")
    types = body.get("embedding_types") or ["float"]
    request.app.state.requests.append(body)
    embeddings = {kind: [vector(t) for t in texts] for kind in types if kind == "float"}
    answer = {
        "id": "da6e531f-54c6-4a73-bf92-f60566d8d753",
        "texts": texts,
        "embeddings": embeddings,
        "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": sum(len(t.split()) for t in texts)}},
        "response_type": "embeddings_by_type",
    }
    return json_response(answer)


def make_app() -> Starlette:
    app = Starlette(routes=[Route("/v2/chat", chat, methods=["POST"]), Route("/v2/embed", embed, methods=["POST"])])
    app.state.requests = []
    return app
