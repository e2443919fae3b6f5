"""Small checks shared by translators for OpenAI parameters a provider has no equivalent for.

Policy (documented in docs/providers.md): an OpenAI parameter the provider cannot honour is dropped when it
carries OpenAI's default (so clients that always send defaults keep working) and refused with a 400 naming the
parameter otherwise, rather than silently ignored. Parameters OpenAI does not define pass through as-is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import BadRequest
from ..json_types import JSON

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

NOT_FORWARDED = ("stream", "stream_options", "user", "parallel_tool_calls", "store", "metadata", "service_tier")
"""OpenAI parameters the translators that build a closed body (Converse, Gemini) drop whatever their value."""


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


def discard(body: JSON, names: Iterable[str]) -> None:
    """Remove ``names`` from ``body`` whatever their value."""
    for name in names:
        body.pop(name, None)


def sampling_config(body: JSON, *, max_tokens: str, names: Mapping[str, str]) -> JSON:
    """Take the output limit (``max_completion_tokens``, else the legacy ``max_tokens``, as ``max_tokens``),
    the parameters in ``names`` (OpenAI's name → the provider's) and ``stop`` (as ``stopSequences``) out of
    ``body`` into one config object, the shape of Converse's ``inferenceConfig`` and Gemini's
    ``generationConfig``. Parameters that are absent or null are left out."""
    config: JSON = {}
    limit = body.pop("max_completion_tokens", None)
    legacy = body.pop("max_tokens", None)
    if limit is None:
        limit = legacy
    if limit is not None:
        config[max_tokens] = limit
    for ours, theirs in names.items():
        value = body.pop(ours, None)
        if value is not None:
            config[theirs] = value
    stop = body.pop("stop", None)
    if stop is not None:
        config["stopSequences"] = stop_sequences(stop)
    return config


def pass_through(body: JSON, out: JSON, names: Iterable[str]) -> None:
    """Move the provider's own parameters ``names`` that ``body`` holds into ``out`` as they are."""
    for name in names:
        if name in body:
            out[name] = body.pop(name)


def refuse_rest(body: JSON, provider: str) -> None:
    """400 naming a parameter left in ``body`` (the first by name): one the translator did not take."""
    if body:
        name = sorted(body)[0]
        raise BadRequest(f"{provider} does not support the parameter {name!r}", param=name)
