"""Stand-in for Anthropic's Messages API (``POST /v1/messages``), plain and streamed.

Written from Anthropic's published reference:
- request/response: https://docs.anthropic.com/en/api/messages
- streaming events: https://docs.anthropic.com/en/docs/build-with-claude/streaming
- errors (``{"type": "error", "error": {"type", "message"}}``, 529 overloaded_error):
  https://docs.anthropic.com/en/api/errors
- versioning header: https://docs.anthropic.com/en/api/versioning
- extended thinking (``thinking: {type: enabled, budget_tokens}`` or ``{type: adaptive}``, ``thinking`` /
  ``redacted_thinking`` blocks, ``thinking_delta`` / ``signature_delta`` stream events, thinking blocks required back before tool use):
  https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking
- ``metadata`` (``user_id`` only) and ``service_tier`` (``auto`` / ``standard_only``):
  https://docs.anthropic.com/en/api/messages, https://docs.anthropic.com/en/api/service-tiers
Error messages are the API's own texts as reported verbatim in public bug reports ("invalid x-api-key",
"anthropic-version: header is required", "max_tokens: Field required", "temperature: range: 0..1",
"messages.1: all messages must have non-empty content except for the optional final assistant message",
"messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`. ...").

Auth as the API does it: ``x-api-key`` must be present and valid (401 ``authentication_error``), and
``anthropic-version`` must be present (400 ``invalid_request_error``). Every request body is validated the way
the API rejects it (required fields, no ``system`` role, temperature in 0..1, unknown fields, tool_use ids
answered by tool_result blocks at the start of the next user turn, no empty content or empty text blocks, with
thinking on: the assistant turn before the last tool results opening with its signed thinking block) and
recorded in ``app.state.requests``.

Scripted answers: with ``tools`` (and no tool result yet) the model calls ``get_weather`` for Paris, as in the
SDK's recorded stream fixture; otherwise it says :data:`REPLY`; with thinking on, a signed thinking block
(:data:`THOUGHT`, signed by :func:`signature`) comes first. A last user message ``trigger:<case>`` answers
with an error (``429``, ``529``, ``500``), a malformed body (``malformed``), an error event mid-stream
(``stream-error``) or the same with everything up to the error event sent in one write
(``stream-error-burst``).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .replies import json_response, sse_response, trigger_of, typed_sse

API_KEY = "sk-ant-api03-standin-key"
MODEL = "claude-sonnet-4-5"
REPLY = "Hello! How can I help you today?"
TOOL_ID = "toolu_01NRLabsLyVHZPKxbKvkfSMn"
TOOL_TEXT = "I'll check the current weather in Paris for you."
TOOL_JSON_FRAGMENTS = ["", '{"locati', 'on": "P', "ar", 'is"}']
THOUGHT = "The user wants the weather. I should call the tool."
THINKING_REQUIRED = (
    "Expected `thinking` or `redacted_thinking`, but found `{found}`. When `thinking` is enabled, a final "
    "`assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and "
    "`tool_result` blocks). We recommend you include thinking blocks from previous turns. To avoid this "
    "requirement, disable `thinking`. Please consult our documentation at "
    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
)
EMPTY_CONTENT = "all messages must have non-empty content except for the optional final assistant message"

FIELDS = {
    "model", "messages", "max_tokens", "system", "stop_sequences", "temperature", "top_p", "top_k", "stream",
    "tools", "tool_choice", "metadata", "thinking", "service_tier", "container", "mcp_servers",
}  # fmt: skip


def signature(thinking: str) -> str:
    """The stand-in's signature of a thinking text (the real one is opaque; it must come back unmodified)."""
    return base64.b64encode(hashlib.sha256(b"standin:" + thinking.encode()).digest()).decode()


def thinking_enabled(body: dict[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def check_thinking(body: dict[str, Any]) -> str | None:
    """The API's complaint about ``thinking`` and the thinking blocks sent back, or None: the budget (at least
    1024, below ``max_tokens``), each thinking block's signature, and with thinking on, the assistant turn that
    the last user turn's tool results answer opening with a thinking block."""
    thinking = body.get("thinking")
    if thinking is not None:
        if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "adaptive", "disabled"):
            return "thinking: Input tag does not match any of the expected tags: 'enabled', 'adaptive', 'disabled'"
        if thinking["type"] == "enabled":
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or budget < 1024:
                return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
            if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] <= budget:
                return "`max_tokens` must be greater than `thinking.budget_tokens`."
    messages = body.get("messages") or []
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        for j, block in enumerate(content if isinstance(content, list) else []):
            if isinstance(block, dict) and block.get("type") == "thinking" and block.get("signature") != signature(str(block.get("thinking"))):
                return f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
    if thinking_enabled(body) and len(messages) >= 2:
        last = messages[-1].get("content")
        answered = isinstance(last, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in last)
        previous = messages[-2]
        blocks = previous.get("content")
        blocks = [{"type": "text", "text": blocks}] if isinstance(blocks, str) else blocks
        if answered and previous.get("role") == "assistant" and isinstance(blocks, list) and blocks:
            first = blocks[0].get("type") if isinstance(blocks[0], dict) else None
            if first not in ("thinking", "redacted_thinking"):
                return f"messages.{len(messages) - 2}.content.0.type: " + THINKING_REQUIRED.format(found=first)
    return None


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}
    return json_response(body, status, headers)


def _invalid(message: str) -> Response:
    return _error(400, "invalid_request_error", message)


def _check_body(body: Any) -> Response | None:
    if not isinstance(body, dict):
        return _invalid("There was an issue with the format of your request body: expected an object")
    for field in ("model", "messages", "max_tokens"):
        if field not in body:
            return _invalid(f"{field}: Field required")
    for field in body:
        if field not in FIELDS:
            return _invalid(f"{field}: Extra inputs are not permitted")
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        return _invalid("max_tokens: Input should be a valid integer greater than or equal to 1")
    temperature = body.get("temperature")
    if temperature is not None and not (isinstance(temperature, int | float) and 0 <= temperature <= 1):
        return _invalid("temperature: range: 0..1")
    stops = body.get("stop_sequences")
    if stops is not None and not (isinstance(stops, list) and all(isinstance(s, str) for s in stops)):
        return _invalid("stop_sequences: Input should be a valid list")
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict) or "name" not in tool or not isinstance(tool.get("input_schema"), dict):
            return _invalid("tools.0.custom.input_schema: Field required")
    choice = body.get("tool_choice")
    if choice is not None and (not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none")):
        return _invalid("tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'")
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            return _invalid("metadata: Input should be a valid dictionary")
        for key in metadata:
            if key != "user_id":
                return _invalid(f"metadata.{key}: Extra inputs are not permitted")
    if "service_tier" in body and body["service_tier"] not in ("auto", "standard_only"):
        return _invalid("service_tier: Input should be 'auto' or 'standard_only'")
    system = body.get("system")
    if isinstance(system, list) and any(isinstance(b, dict) and b.get("type") == "text" and not b.get("text") for b in system):
        return _invalid("system: text content blocks must be non-empty")
    problem = _check_messages(body["messages"])
    if problem:
        return problem
    thinking = check_thinking(body)
    return _invalid(thinking) if thinking else None


def _check_messages(messages: Any) -> Response | None:
    if not isinstance(messages, list) or not messages:
        return _invalid("messages: at least one message is required")
    pending: list[str] = []
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "system":
            return _invalid(
                'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, '
                'not "system" as an input message role.'
            )
        if role not in ("user", "assistant"):
            return _invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list):
            return _invalid(f"messages.{i}.content: Input should be a valid list")
        final_assistant = role == "assistant" and i == len(messages) - 1
        if not final_assistant and (content == "" or blocks == []):
            return _invalid(f"messages.{i}: {EMPTY_CONTENT}")
        if isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "text" and b.get("text") == "" for b in blocks):
            return _invalid("messages: text content blocks must be non-empty")
        if pending:
            answered = [b.get("tool_use_id") for b in blocks[: len(pending)] if b.get("type") == "tool_result"]
            if role != "user" or sorted(answered) != sorted(pending):
                return _invalid(
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                    + ", ".join(pending)
                )
        pending = [b["id"] for b in blocks if b.get("type") == "tool_use"] if role == "assistant" else []
        for block in blocks:
            problem = _check_block(block, role, i)
            if problem:
                return problem
    return None


def _check_block(block: Any, role: str, i: int) -> Response | None:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind == "text" and isinstance(block.get("text"), str):
        return None
    if kind == "image" and role == "user":
        source = block.get("source") or {}
        if source.get("type") == "base64" and source.get("media_type") in ("image/jpeg", "image/png", "image/gif", "image/webp"):
            return None
        if source.get("type") == "url" and str(source.get("url", "")).startswith(("http://", "https://")):
            return None
        return _invalid(f"messages.{i}.content.0.image.source: Input tag does not match any of the expected tags")
    if kind == "tool_use" and role == "assistant" and isinstance(block.get("input"), dict):
        return None
    if kind == "tool_result" and role == "user" and "tool_use_id" in block:
        return None
    if kind == "thinking" and role == "assistant" and isinstance(block.get("thinking"), str) and isinstance(block.get("signature"), str):
        return None
    if kind == "redacted_thinking" and role == "assistant" and isinstance(block.get("data"), str):
        return None
    return _invalid(f"messages.{i}.content: Input tag {kind!r} found using 'type' does not match the expected tags")


def _last_user_text(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if b.get("type") == "text")


def _wants_tool(body: dict[str, Any]) -> bool:
    last = body["messages"][-1]["content"]
    answered = isinstance(last, list) and any(b.get("type") == "tool_result" for b in last)
    return bool(body.get("tools")) and (body.get("tool_choice") or {}).get("type") != "none" and not answered


def _message(body: dict[str, Any]) -> dict[str, Any]:
    if _wants_tool(body):
        content: list[dict[str, Any]] = [
            {"type": "text", "text": TOOL_TEXT},
            {"type": "tool_use", "id": TOOL_ID, "name": body["tools"][0]["name"], "input": {"location": "Paris"}},
        ]
        stop, output = "tool_use", 65
    else:
        content, stop, output = [{"type": "text", "text": REPLY}], "end_turn", 10
        if body["max_tokens"] < 5:
            content, stop, output = [{"type": "text", "text": "Hello"}], "max_tokens", body["max_tokens"]
    if thinking_enabled(body):
        content.insert(0, {"type": "thinking", "thinking": THOUGHT, "signature": signature(THOUGHT)})
    return {
        "id": "msg_01MkoP42QB7TUf5m2NVVK2kE",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 249, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": output},
    }


async def _burst(events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``events`` in one write."""
    yield b"".join([event async for event in events])


async def _events(message: dict[str, Any], fail: bool) -> AsyncIterator[bytes]:
    start = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 1}}
    yield typed_sse({"type": "message_start", "message": start})
    yield typed_sse({"type": "ping"})
    for index, block in enumerate(message["content"]):
        if block["type"] == "thinking":
            yield typed_sse({"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": ""}})
            for piece in re.findall(r"\S+\s*", block["thinking"]):
                yield typed_sse({"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": piece}})
            yield typed_sse({"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": block["signature"]}})
        elif block["type"] == "text":
            yield typed_sse({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
            words = block["text"].split(" ")
            for n, word in enumerate(words):
                text = word if n == len(words) - 1 else word + " "
                yield typed_sse({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}})
                if fail:
                    yield typed_sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
                    return
        else:
            opening = {**block, "input": {}}
            yield typed_sse({"type": "content_block_start", "index": index, "content_block": opening})
            for fragment in TOOL_JSON_FRAGMENTS:
                json_delta = {"type": "input_json_delta", "partial_json": fragment}
                yield typed_sse({"type": "content_block_delta", "index": index, "delta": json_delta})
        yield typed_sse({"type": "content_block_stop", "index": index})
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    yield typed_sse({"type": "message_delta", "delta": stop, "usage": {"output_tokens": message["usage"]["output_tokens"]}})
    yield typed_sse({"type": "message_stop"})


async def messages(request: Request) -> Response:
    key = request.headers.get("x-api-key")
    if key is None:
        return _error(401, "authentication_error", "x-api-key header is required")
    if key != API_KEY:
        return _error(401, "authentication_error", "invalid x-api-key")
    if not request.headers.get("anthropic-version"):
        return _invalid("anthropic-version: header is required")
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return _invalid("There was an issue with the format of your request body: it is not valid JSON")
    problem = _check_body(body)
    if problem:
        return problem
    request.app.state.requests.append(body)
    trigger = trigger_of(_last_user_text(body))
    if trigger == "429":
        return _error(429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit", {"retry-after": "7"})
    if trigger == "529":
        return _error(529, "overloaded_error", "Overloaded")
    if trigger == "500":
        return _error(500, "api_error", "Internal server error")
    if trigger == "malformed":
        return Response(b'{"id": "msg_01", "content": [', media_type="application/json")
    message = _message(body)
    if body.get("stream"):
        if trigger == "stream-error-burst":
            return sse_response(_burst(_events(message, True)))
        return sse_response(_events(message, trigger == "stream-error"))
    return json_response(message)


def make_app() -> Starlette:
    app = Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])
    app.state.requests = []
    return app
