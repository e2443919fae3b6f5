"""Token counts of a request and its answer: the provider's ``usage`` where it gave one, else the estimate
Databricks uses, ``(text length + 1) / 4`` (integer), from the request's and the answer's text.

Also the text walkers the guardrails and the estimate share: which strings of an OpenAI-format request or
answer are text a person or a model wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeGuard

from .json_types import JSON
from .spec import Task


@dataclass(frozen=True, slots=True)
class TokenUsage:
    input: int
    output: int
    estimated: bool
    """At least one of the two counts is an estimate."""

    @property
    def total(self) -> int:
        return self.input + self.output


def estimate(chars: int) -> int:
    return (chars + 1) // 4 if chars > 0 else 0


def request_texts(task: Task, payload: JSON) -> Iterator[str]:
    """The text of a request: chat message contents (text parts of multi-part content), the prompt, the
    embeddings input (token-id lists are not text)."""
    if task == "llm/v1/chat":
        messages = payload.get("messages")
        if isinstance(messages, list):
            for message in messages:
                if isinstance(message, dict):
                    yield from content_texts(message.get("content"))
        return
    value = payload.get("prompt" if task == "llm/v1/completions" else "input")
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                yield item


def content_texts(content: Any) -> Iterator[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"]


def answer_texts(body: JSON) -> Iterator[str]:
    """The text of an OpenAI-format answer: message contents and tool-call arguments, or completion texts."""
    choices = body.get("choices")
    if not isinstance(choices, list):
        return
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        if isinstance(choice.get("text"), str):
            yield choice["text"]
        message = choice.get("message")
        if isinstance(message, dict):
            yield from content_texts(message.get("content"))
            calls = message.get("tool_calls")
            if isinstance(calls, list):
                for call in calls:
                    function = call.get("function") if isinstance(call, dict) else None
                    if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                        yield function["arguments"]


def request_chars(task: Task, payload: JSON) -> int:
    """``sum(map(len, request_texts(task, payload)))``, without the generators (it runs for every tracked request:
    a third of the CPU)."""
    chars = 0
    if task == "llm/v1/chat":
        messages = payload.get("messages")
        if isinstance(messages, list):
            for message in messages:
                if isinstance(message, dict):
                    chars += _content_chars(message.get("content"))
        return chars
    value = payload.get("prompt" if task == "llm/v1/completions" else "input")
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                chars += len(item)
    return chars


def _content_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    chars = 0
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                chars += len(part["text"])
    return chars


def answer_chars(body: JSON) -> int:
    """``sum(map(len, answer_texts(body)))``, without the generators."""
    choices = body.get("choices")
    if not isinstance(choices, list):
        return 0
    chars = 0
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        text = choice.get("text")
        if isinstance(text, str):
            chars += len(text)
        message = choice.get("message")
        if isinstance(message, dict):
            chars += _content_chars(message.get("content"))
            calls = message.get("tool_calls")
            if isinstance(calls, list):
                for call in calls:
                    function = call.get("function") if isinstance(call, dict) else None
                    if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                        chars += len(function["arguments"])
    return chars


def token_usage(task: Task, payload: JSON, answer: JSON) -> TokenUsage:
    """Tokens of one request/answer pair; embeddings have no output tokens."""
    usage = answer.get("usage")
    if not isinstance(usage, dict):
        usage = {}
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    estimated = False
    input_tokens: int
    output_tokens: int
    if _is_count(prompt):
        input_tokens = prompt
    else:
        input_tokens = estimate(request_chars(task, payload))
        estimated = True
    if task == "llm/v1/embeddings":
        output_tokens = 0
    elif _is_count(completion):
        output_tokens = completion
    else:
        output_tokens = estimate(answer_chars(answer))
        estimated = True
    return TokenUsage(input_tokens, output_tokens, estimated)


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
