"""Aggregate a stream of OpenAI chunks into the one answer a non-streamed call would have returned.

Used for what happens after a stream (usage records, payload logs, token budgets) and by output guardrails.
Chat chunks: ``choices[].delta`` with ``role``, ``content`` pieces, ``tool_calls`` pieces by ``index`` (``id``,
``type`` and ``function.name`` once, ``function.arguments`` in pieces), ``finish_reason``; completion chunks:
``choices[].text`` pieces. ``usage`` comes in the chunk that carries it (the last, for OpenAI).
"""

from __future__ import annotations

from typing import Any

from .json_types import JSON
from .spec import Task


class _Choice:
    __slots__ = ("content", "finish_reason", "refusal", "role", "tool_calls")

    def __init__(self) -> None:
        self.role = "assistant"
        self.content: list[str] = []
        self.refusal: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: Any = None


class StreamAggregator:
    __slots__ = ("_choices", "_head", "chunks", "task", "usage")

    def __init__(self, task: Task) -> None:
        self.task = task
        self._choices: dict[int, _Choice] = {}
        self._head: JSON = {}
        self.usage: Any = None
        self.chunks = 0

    def feed(self, chunks: list[JSON]) -> None:
        for chunk in chunks:
            self.chunks += 1
            if not self._head:
                self._head = {k: chunk[k] for k in ("id", "created", "model") if k in chunk}
            usage = chunk.get("usage")
            if usage:
                self.usage = usage
            choices = chunk.get("choices")
            if isinstance(choices, list):
                for choice in choices:
                    if isinstance(choice, dict):
                        self._feed_choice(choice)

    def _feed_choice(self, data: JSON) -> None:
        index = data.get("index", 0)
        if not isinstance(index, int):
            index = 0
        choice = self._choices.get(index)
        if choice is None:
            choice = self._choices[index] = _Choice()
        if data.get("finish_reason") is not None:
            choice.finish_reason = data["finish_reason"]
        text = data.get("text")
        if isinstance(text, str):
            choice.content.append(text)
        delta = data.get("delta")
        if not isinstance(delta, dict):
            return
        if isinstance(delta.get("role"), str):
            choice.role = delta["role"]
        if isinstance(delta.get("content"), str):
            choice.content.append(delta["content"])
        if isinstance(delta.get("refusal"), str):
            choice.refusal.append(delta["refusal"])
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                if isinstance(call, dict):
                    _feed_call(choice, call)

    def text(self) -> str:
        """All choices' text, concatenated."""
        return "".join("".join(c.content) for c in self._choices.values())

    def answer(self) -> JSON:
        """The aggregated answer in the OpenAI format of the task."""
        out: JSON = dict(self._head)
        choices: list[JSON] = []
        for index in sorted(self._choices):
            choice = self._choices[index]
            if self.task == "llm/v1/completions":
                choices.append({"index": index, "text": "".join(choice.content),
                                "finish_reason": choice.finish_reason})
                continue
            message: JSON = {"role": choice.role, "content": "".join(choice.content) if choice.content else None}
            if choice.refusal:
                message["refusal"] = "".join(choice.refusal)
            if choice.tool_calls:
                message["tool_calls"] = [choice.tool_calls[i] for i in sorted(choice.tool_calls)]
            choices.append({"index": index, "message": message, "finish_reason": choice.finish_reason})
        out["object"] = "text_completion" if self.task == "llm/v1/completions" else "chat.completion"
        out["choices"] = choices
        if self.usage is not None:
            out["usage"] = self.usage
        return out


def _feed_call(choice: _Choice, delta: JSON) -> None:
    index = delta.get("index", 0)
    if not isinstance(index, int):
        index = len(choice.tool_calls)
    call = choice.tool_calls.get(index)
    if call is None:
        call = choice.tool_calls[index] = {"id": None, "type": "function",
                                           "function": {"name": "", "arguments": ""}}
    if isinstance(delta.get("id"), str):
        call["id"] = delta["id"]
    if isinstance(delta.get("type"), str):
        call["type"] = delta["type"]
    function = delta.get("function")
    if isinstance(function, dict):
        if isinstance(function.get("name"), str):
            call["function"]["name"] += function["name"]
        if isinstance(function.get("arguments"), str):
            call["function"]["arguments"] += function["arguments"]
