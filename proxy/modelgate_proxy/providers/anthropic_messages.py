"""OpenAI chat ↔ Anthropic Messages API, whole messages (the stream is in ``anthropic_stream``).

Pure functions, so Anthropic models behind other providers (Vertex ``rawPredict``, Bedrock ``InvokeModel``)
can reuse them: :func:`messages_body` builds everything but ``model``; :func:`chat_completion_from_message`
reads an Anthropic ``message`` object.

Empty content: the API refuses a message with empty content ("all messages must have non-empty content except
for the optional final assistant message") and an empty text block ("text content blocks must be non-empty"),
so empty system texts, empty user text parts and assistant messages with nothing to say are left out, and a
user message with no content is a 400 naming it.

Extended thinking (https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking): ``thinking`` and
``redacted_thinking`` blocks of an answer come back as the message's ``reasoning_content`` and
``thinking_blocks`` (``messages.THINKING_BLOCKS``); the ``thinking_blocks`` of an assistant message open its turn
again, signatures untouched, as the API requires before ``tool_use`` when thinking is on.

Reference: https://docs.anthropic.com/en/api/messages
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import BadRequest
from ..json_types import JSON
from . import openai_objects as oa
from .messages import text_of, thinking_blocks
from .params import drop_unsupported, stop_sequences
from .tool_calls import call_arguments, tool_function

DEFAULT_MAX_TOKENS = 4096
"""``max_tokens`` sent when the caller gives neither ``max_tokens`` nor ``max_completion_tokens``: Anthropic
requires the field, and 4096 is within every current Claude model's output limit."""

UNSUPPORTED = (
    "n", "seed", "frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "top_logprobs",
    "response_format", "store",
)  # fmt: skip
"""OpenAI parameters with no Messages API equivalent (dropped at their default, refused otherwise)."""

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

SERVICE_TIERS = {"auto": "auto", "priority": "auto", "default": "standard_only", "standard_only": "standard_only"}
"""OpenAI ``service_tier`` → Anthropic's (``auto``: Priority Tier when the organisation has capacity, else
standard; ``standard_only``), https://docs.anthropic.com/en/api/service-tiers. OpenAI's ``flex`` and ``scale``
have no Anthropic tier and are dropped: the request runs at the standard tier."""

ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 503,
    "timeout_error": 504,
}
"""Anthropic error type → the status the caller sees (Anthropic's own 529 ``overloaded_error`` becomes 503)."""


def messages_body(payload: JSON) -> JSON:
    """The Messages API body for an OpenAI chat payload, without ``model``."""
    body = dict(payload)
    body.pop("stream_options", None)  # usage always comes in the stream's last chunk
    drop_unsupported(body, UNSUPPORTED, "anthropic")
    system, messages = _convert_messages(body.pop("messages", None))
    out: JSON = {"messages": messages}
    if system:
        out["system"] = system[0]["text"] if len(system) == 1 else system
    limit = body.pop("max_tokens", None)  # Anthropic's own name wins when both are given
    newer = body.pop("max_completion_tokens", None)
    if limit is None:
        limit = newer
    out["max_tokens"] = DEFAULT_MAX_TOKENS if limit is None else limit  # 0 is the caller's value, refused upstream
    if "stop" in body:
        stop = body.pop("stop")
        if stop is not None:
            out["stop_sequences"] = stop_sequences(stop)
    if "tools" in body:
        out["tools"] = [_tool(t) for t in body.pop("tools") or []]
    choice = _tool_choice(body.pop("tool_choice", None), body.pop("parallel_tool_calls", None))
    if choice is not None:
        out["tool_choice"] = choice
    user_id = _user_id(body.pop("metadata", None), body.pop("user", None))
    if user_id:
        out["metadata"] = {"user_id": user_id}
    tier = body.pop("service_tier", None)
    if isinstance(tier, str) and tier in SERVICE_TIERS:
        out["service_tier"] = SERVICE_TIERS[tier]
    out.update(body)  # temperature, top_p, top_k, stream, thinking, ... as-is
    return out


def _user_id(metadata: Any, user: Any) -> str | None:
    """Anthropic's ``metadata`` holds only ``user_id``: the caller's ``metadata.user_id``, else OpenAI's ``user``.
    OpenAI's other ``metadata`` keys (labels for stored completions) have no Anthropic equivalent."""
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    if isinstance(user_id, str) and user_id:
        return user_id
    return user if isinstance(user, str) and user else None


def _convert_messages(messages: Any) -> tuple[list[JSON], list[JSON]]:
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list", param="messages")
    system: list[JSON] = []
    turns: list[JSON] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest("each message must be an object", param="messages")
        role = message.get("role")
        if role in ("system", "developer"):
            text = text_of(message.get("content"), role=str(role))
            if text:
                system.append({"type": "text", "text": text})
        elif role == "user":
            blocks = _user_blocks(message.get("content"))
            if not blocks:
                raise BadRequest(f"messages[{i}] is a user message with empty content", param="messages")
            _append(turns, "user", blocks)
        elif role == "assistant":
            blocks = _assistant_blocks(message)
            if blocks:  # nothing to say: left out (a turn with empty content is refused)
                _append(turns, "assistant", blocks)
        elif role == "tool":
            _append(turns, "user", [_tool_result(message)])
        else:
            raise BadRequest(f"unsupported message role {role!r}", param="messages")
    if not turns:
        raise BadRequest("messages must hold at least one user or assistant message", param="messages")
    return system, [_compact(t) for t in turns]


def _append(turns: list[JSON], role: str, blocks: list[JSON]) -> None:
    """Consecutive messages of one role become one turn (tool results then stay first in the user turn)."""
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _compact(turn: JSON) -> JSON:
    blocks = turn["content"]
    if len(blocks) == 1 and blocks[0]["type"] == "text":
        return {"role": turn["role"], "content": blocks[0]["text"]}
    return turn


def _user_blocks(content: Any) -> list[JSON]:
    """The user message's blocks, empty texts left out."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise BadRequest("user message content must be a string or a list of parts", param="messages")
    blocks = [_user_part(part) for part in content]
    return [b for b in blocks if b["type"] != "text" or b["text"]]


def _user_part(part: Any) -> JSON:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        return {"type": "text", "text": part["text"]}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if isinstance(url, str):
            return {"type": "image", "source": image_source(url)}
    raise BadRequest("user message parts must be text or image_url parts", param="messages")


def image_source(url: str) -> JSON:
    """An OpenAI image URL as an Anthropic image source: ``data:`` URLs → base64, http(s) URLs → url."""
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not sep or encoding != "base64" or not media_type:
            raise BadRequest("image data URLs must look like data:<media type>;base64,<data>", param="messages")
        return {"type": "base64", "media_type": media_type, "data": data}
    if url.startswith(("https://", "http://")):
        return {"type": "url", "url": url}
    raise BadRequest("image URLs must be data: or http(s) URLs", param="messages")


def _assistant_blocks(message: JSON) -> list[JSON]:
    """The thinking blocks the message carries back, its text and its tool calls, in that order; none when the
    message has nothing to say."""
    blocks: list[JSON] = thinking_blocks(message)
    text = text_of(message.get("content"), role="assistant")
    if text:
        blocks.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(call.get("id"), str):
            raise BadRequest("assistant tool_calls need an id and a function", param="messages")
        blocks.append({"type": "tool_use", "id": call["id"], "name": function.get("name"), "input": call_arguments(function)})
    return blocks


def _tool_result(message: JSON) -> JSON:
    if not isinstance(message.get("tool_call_id"), str):
        raise BadRequest("tool messages need a tool_call_id", param="messages")
    return {"type": "tool_result", "tool_use_id": message["tool_call_id"], "content": text_of(message.get("content"), role="tool")}


def _tool(tool: Any) -> JSON:
    function = tool_function(tool)
    out: JSON = {"name": function["name"], "input_schema": function.get("parameters") or {"type": "object", "properties": {}}}
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice(choice: Any, parallel: Any) -> JSON | None:
    out: JSON | None
    if choice is None:
        out = None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict) and choice["function"].get("name"):
        out = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise BadRequest("tool_choice must be auto, required, none or a function", param="tool_choice")
    if parallel is False:
        out = out or {"type": "auto"}
        if out["type"] != "none":
            out["disable_parallel_tool_use"] = True
    return out


def finish_reason(stop_reason: Any) -> str | None:
    if stop_reason is None:
        return None
    return STOP_REASONS.get(str(stop_reason), "stop")


def usage_from(usage: JSON) -> JSON:
    """Anthropic usage → OpenAI usage; prompt tokens include cache writes and reads."""
    cached = int(usage.get("cache_read_input_tokens") or 0)
    prompt = int(usage.get("input_tokens") or 0) + int(usage.get("cache_creation_input_tokens") or 0) + cached
    out = oa.usage(prompt, int(usage.get("output_tokens") or 0))
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


def chat_completion_from_message(message: JSON, model: str) -> JSON:
    """An Anthropic ``message`` object as an OpenAI ``chat.completion``; raises KeyError/TypeError if malformed."""
    texts: list[str] = []
    calls: list[JSON] = []
    thinking: list[JSON] = []
    for block in message["content"]:
        if block["type"] == "text":
            texts.append(block["text"])
        elif block["type"] == "tool_use":
            calls.append(oa.tool_call(block["id"], block["name"], orjson.dumps(block.get("input", {})).decode()))
        elif block["type"] == "thinking":
            thinking.append({"type": "thinking", "thinking": str(block["thinking"]), "signature": str(block["signature"])})
        elif block["type"] == "redacted_thinking":
            thinking.append({"type": "redacted_thinking", "data": str(block["data"])})
    return oa.chat_completion(
        id=message["id"],
        model=message.get("model") or model,
        content="".join(texts) if texts or not calls else None,
        tool_calls=calls,
        finish_reason=finish_reason(message.get("stop_reason")),
        usage=usage_from(message.get("usage") or {}),
        thinking_blocks=thinking,
    )
