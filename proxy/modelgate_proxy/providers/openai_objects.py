"""Builders for the OpenAI-format objects every translator answers with.

A translator reads its provider's answer and hands the pieces here, so ``chat.completion``,
``chat.completion.chunk``, ``text_completion`` and embedding lists look the same whatever the provider.
"""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import Sequence
from typing import Any

from ..json_types import JSON


def now() -> int:
    return int(time.time())


def usage(prompt_tokens: int, completion_tokens: int) -> JSON:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_completion(
    *,
    id: str,
    model: str,
    content: str | None,
    tool_calls: list[JSON],
    finish_reason: str | None,
    usage: JSON | None,
    thinking_blocks: list[JSON] | None = None,
) -> JSON:
    """A one-choice ``chat.completion``. ``thinking_blocks`` (Anthropic's ``thinking`` / ``redacted_thinking``
    block shapes) go on the message with their text as ``reasoning_content`` (see ``messages.THINKING_BLOCKS``)."""
    message: JSON = {"role": "assistant", "content": content}
    if thinking_blocks:
        message["reasoning_content"] = reasoning_text(thinking_blocks)
        message["thinking_blocks"] = thinking_blocks
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": id,
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage,
    }


def reasoning_text(blocks: list[JSON]) -> str:
    """The readable reasoning of thinking blocks (redacted ones have none)."""
    return "".join(str(b.get("thinking") or "") for b in blocks if b.get("type") == "thinking")


def tool_call(id: str, name: str, arguments: str) -> JSON:
    return {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}


def chat_chunk(
    *, id: str, model: str, created: int, delta: JSON, finish_reason: str | None = None, index: int = 0
) -> JSON:
    return {
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def usage_chunk(*, id: str, model: str, created: int, usage: JSON, object: str = "chat.completion.chunk") -> JSON:
    """The last chunk of a stream with ``stream_options.include_usage``: no choices, only usage."""
    return {"id": id, "object": object, "created": created, "model": model, "choices": [], "usage": usage}


def embeddings_list(vectors: Sequence[Sequence[float]], *, model: str, prompt_tokens: int, encoding_format: Any) -> JSON:
    """The OpenAI embeddings answer; ``encoding_format: base64`` packs each vector as little-endian float32,
    which is what the ``openai`` client asks for by default and decodes."""
    data = [
        {"object": "embedding", "index": i, "embedding": _encode(vector, encoding_format)}
        for i, vector in enumerate(vectors)
    ]
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}}


def _encode(vector: Sequence[float], encoding_format: Any) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return list(vector)
