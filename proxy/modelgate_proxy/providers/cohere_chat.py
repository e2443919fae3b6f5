"""OpenAI chat ↔ Cohere's v2 Chat API (``POST /v2/chat``), whole responses (the stream is in ``cohere_stream``).

Cohere v2 messages are close to OpenAI's (system/user/assistant/tool roles, function tools, ``tool_calls`` with
JSON-string arguments); the parameters differ in name: ``stop`` → ``stop_sequences``, ``top_p`` → ``p``,
``top_k`` → ``k``; ``seed``, ``frequency_penalty``, ``presence_penalty``, ``max_tokens`` keep their names.
Reference: https://docs.cohere.com/reference/chat
"""

from __future__ import annotations

from typing import Any

from ..errors import BadRequest, UpstreamError
from ..json_types import JSON
from . import openai_objects as oa
from .params import drop_unsupported, rename, stop_sequences

UNSUPPORTED = ("n", "logit_bias", "top_logprobs", "parallel_tool_calls", "store", "service_tier")
"""OpenAI parameters with no Cohere v2 equivalent (dropped at their default, refused otherwise)."""

FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
}

FAILED = ("ERROR", "TIMEOUT")
"""Finish reasons that mean the generation failed (https://docs.cohere.com/reference/chat, ``finish_reason``):
a 502, whole or streamed, never an answer that looks complete."""


def check_finish(value: Any, error: Any = None) -> None:
    """:class:`UpstreamError` (502) for a failed generation: an ``error`` or a :data:`FAILED` finish reason."""
    if error or value in FAILED:
        raise UpstreamError(f"cohere error: {error or f'generation ended with {value}'}", status=502)


def chat_body(payload: JSON) -> JSON:
    """The ``/v2/chat`` body for an OpenAI chat payload, without ``model``."""
    body = dict(payload)
    for name in ("user", "metadata", "stream_options"):  # OpenAI-only labels; usage is always streamed
        body.pop(name, None)
    drop_unsupported(body, UNSUPPORTED, "cohere")
    out: JSON = {"messages": [_message(m) for m in _messages(body.pop("messages", None))]}
    rename(body, "max_completion_tokens", "max_tokens")
    rename(body, "top_p", "p")
    rename(body, "top_k", "k")
    if "stop" in body:
        stop = body.pop("stop")
        if stop is not None:
            out["stop_sequences"] = stop_sequences(stop)
    tools = body.pop("tools", None)
    choice = body.pop("tool_choice", None)
    if tools:
        out["tools"] = tools
    _apply_tool_choice(out, choice)
    if "response_format" in body:
        response_format = _response_format(body.pop("response_format"))
        if response_format:
            out["response_format"] = response_format
    out.update(body)  # temperature, p, k, seed, penalties, max_tokens, stream, logprobs, documents, ... as-is
    return out


def _messages(messages: Any) -> list[JSON]:
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise BadRequest("messages must be a non-empty list of objects", param="messages")
    return messages


def _message(message: JSON) -> JSON:
    role = message.get("role")
    if role == "developer":
        return {"role": "system", "content": message.get("content")}
    if role in ("system", "user"):
        return {"role": role, "content": message.get("content")}
    if role == "assistant":
        out: JSON = {"role": "assistant"}
        if message.get("content"):
            out["content"] = message["content"]
        if message.get("tool_calls"):
            out["tool_calls"] = message["tool_calls"]
        return out
    if role == "tool":
        return {"role": "tool", "tool_call_id": message.get("tool_call_id"), "content": message.get("content") or ""}
    raise BadRequest(f"unsupported message role {role!r}", param="messages")


def _apply_tool_choice(out: JSON, choice: Any) -> None:
    """Cohere knows ``REQUIRED`` and ``NONE``; a named function becomes ``REQUIRED`` with only that tool."""
    if choice in (None, "auto"):
        return
    if choice == "required":
        out["tool_choice"] = "REQUIRED"
    elif choice == "none":
        out["tool_choice"] = "NONE"
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        out["tools"] = [t for t in out.get("tools", []) if (t.get("function") or {}).get("name") == name]
        if not out["tools"]:
            raise BadRequest(f"tool_choice names {name!r}, which is not among the tools", param="tool_choice")
        out["tool_choice"] = "REQUIRED"
    else:
        raise BadRequest("tool_choice must be auto, required, none or a function", param="tool_choice")


def _response_format(value: Any) -> JSON | None:
    """OpenAI ``response_format`` → Cohere's: ``json_object`` as-is, ``json_schema`` → ``json_object`` with the schema."""
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema" and isinstance(value.get("json_schema"), dict):
        return {"type": "json_object", "json_schema": value["json_schema"].get("schema", {})}
    raise BadRequest("response_format must be text, json_object or json_schema", param="response_format")


def finish_reason(value: Any) -> str | None:
    return None if value is None else FINISH_REASONS.get(str(value), "stop")


def usage_from(usage: JSON | None) -> JSON:
    """Cohere usage → OpenAI usage: the billed units when present (what the account is charged), else model tokens."""
    usage = usage or {}
    counts = usage.get("billed_units") or usage.get("tokens") or {}
    return oa.usage(int(counts.get("input_tokens") or 0), int(counts.get("output_tokens") or 0))


def chat_completion_from_response(response: JSON, model: str) -> JSON:
    """A ``/v2/chat`` response as an OpenAI ``chat.completion``; raises KeyError/TypeError if malformed."""
    check_finish(response.get("finish_reason"))
    message = response["message"]
    texts = [part["text"] for part in message.get("content") or [] if part["type"] == "text"]
    calls = [
        oa.tool_call(call["id"], call["function"]["name"], call["function"].get("arguments") or "{}")
        for call in message.get("tool_calls") or []
    ]
    return oa.chat_completion(
        id=response["id"],
        model=model,
        content="".join(texts) if texts or not calls else None,
        tool_calls=calls,
        finish_reason=finish_reason(response.get("finish_reason")),
        usage=usage_from(response.get("usage")),
    )
