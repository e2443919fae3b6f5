"""Small checks shared by translators for OpenAI parameters a provider has no equivalent for.

Policy (documented in docs/providers.md): an OpenAI parameter the provider cannot honour is dropped when it
carries OpenAI's default (so clients that always send defaults keep working) and refused with a 400 naming the
parameter otherwise, rather than silently ignored. Parameters OpenAI does not define pass through as-is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import BadRequest

JSON = dict[str, Any]

_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "n": (None, 1),
    "seed": (None,),
    "frequency_penalty": (None, 0, 0.0),
    "presence_penalty": (None, 0, 0.0),
    "logit_bias": (None, {}),
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "parallel_tool_calls": (None, True),
    "response_format": (None, {"type": "text"}),
    "tool_choice": (None, "auto"),
    "best_of": (None, 1),
    "echo": (None, False),
    "suffix": (None, ""),
    "user": (None,),
    "stream_options": (None,),
    "service_tier": (None, "auto", "default"),
    "store": (None, False),
    "metadata": (None,),
}


def drop_unsupported(body: JSON, names: Iterable[str], provider: str) -> None:
    """Remove ``names`` from ``body``; 400 if one of them has a non-default value."""
    for name in names:
        if name not in body:
            continue
        value = body.pop(name)
        if value not in _DEFAULTS.get(name, (None,)):
            raise BadRequest(f"{provider} does not support the parameter {name!r}", param=name)


def stop_sequences(value: Any) -> list[str]:
    """OpenAI ``stop`` (a string or a list of strings) as a list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise BadRequest("stop must be a string or a list of strings", param="stop")


def rename(body: JSON, old: str, new: str) -> None:
    """Move ``body[old]`` to ``body[new]`` when present (the new name wins if both are given)."""
    if old in body:
        value = body.pop(old)
        body.setdefault(new, value)


def text_of(content: Any, *, role: str) -> str:
    """The text of an OpenAI message content (a string or a list of text parts); 400 for other parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise BadRequest(f"{role} message content may only hold text parts here", param="messages")
            texts.append(part["text"])
        return "".join(texts)
    raise BadRequest(f"{role} message content must be a string or a list of parts", param="messages")
