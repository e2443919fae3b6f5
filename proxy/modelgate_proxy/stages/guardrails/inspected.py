"""What the guardrails inspect, and how a checked text is written back (masked).

- Input: every chat message's text (the text parts of multi-part content; tool results are ``tool`` messages,
  so their content is inspected too), the ``function.arguments`` of the tool calls in assistant messages, the
  completions prompt, the embeddings input (token-id lists are not text).
- Output: the answer's message contents, its tool calls' ``function.arguments``, completion texts.

Images and audio parts are not inspected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...json_types import JSON
from ...spec import Task
from .judge_prompts import Turn

Rewrite = Callable[[str], str]


def request_texts(task: Task, payload: JSON) -> list[str]:
    out: list[str] = []
    if task == "llm/v1/chat":
        for message in payload.get("messages") or ():
            if isinstance(message, dict):
                _content_texts(message.get("content"), out)
                _tool_call_texts(message.get("tool_calls"), out)
        return out
    value = payload.get("prompt" if task == "llm/v1/completions" else "input")
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, list):
        out.extend(v for v in value if isinstance(v, str))
    return out


def answer_texts(body: JSON) -> list[str]:
    out: list[str] = []
    for choice in body.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        if isinstance(choice.get("text"), str):
            out.append(choice["text"])
        message = choice.get("message")
        if isinstance(message, dict):
            _content_texts(message.get("content"), out)
            _tool_call_texts(message.get("tool_calls"), out)
    return out


def _content_texts(content: Any, out: list[str]) -> None:
    if isinstance(content, str):
        out.append(content)
    elif isinstance(content, list):
        out.extend(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))


def _tool_call_texts(calls: Any, out: list[str]) -> None:
    if isinstance(calls, list):
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                out.append(function["arguments"])


def rewrite_request(task: Task, payload: JSON, fn: Rewrite) -> JSON:
    """A copy of ``payload`` with every inspected text passed through ``fn`` (unchanged parts shared)."""
    out = dict(payload)
    if task == "llm/v1/chat":
        out["messages"] = [_rewrite_message(m, fn) if isinstance(m, dict) else m for m in payload["messages"]]
        return out
    field = "prompt" if task == "llm/v1/completions" else "input"
    value = payload.get(field)
    if isinstance(value, str):
        out[field] = fn(value)
    elif isinstance(value, list):
        out[field] = [fn(v) if isinstance(v, str) else v for v in value]
    return out


def rewrite_answer(body: JSON, fn: Rewrite) -> JSON:
    out = dict(body)
    choices = []
    for choice in body.get("choices") or ():
        if isinstance(choice, dict):
            choice = dict(choice)
            if isinstance(choice.get("text"), str):
                choice["text"] = fn(choice["text"])
            message = choice.get("message")
            if isinstance(message, dict):
                choice["message"] = _rewrite_message(message, fn)
        choices.append(choice)
    out["choices"] = choices
    return out


def _rewrite_message(message: JSON, fn: Rewrite) -> JSON:
    out = dict(message)
    if "content" in message:
        out["content"] = _rewrite_content(message["content"], fn)
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        out["tool_calls"] = [_rewrite_call(c, fn) for c in calls]
    return out


def _rewrite_call(call: Any, fn: Rewrite) -> Any:
    function = call.get("function") if isinstance(call, dict) else None
    if isinstance(function, dict) and isinstance(function.get("arguments"), str):
        return {**call, "function": {**function, "arguments": fn(function["arguments"])}}
    return call


def _rewrite_content(content: Any, fn: Rewrite) -> Any:
    if isinstance(content, str):
        return fn(content)
    if isinstance(content, list):
        return [{**p, "text": fn(p["text"])} if isinstance(p, dict) and isinstance(p.get("text"), str) else p
                for p in content]
    return content


def chunk_texts(chunk: JSON) -> list[str]:
    """The texts of one stream chunk: delta contents, completion texts, tool-call argument fragments."""
    out: list[str] = []
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        if isinstance(choice.get("text"), str):
            out.append(choice["text"])
        delta = choice.get("delta")
        if isinstance(delta, dict):
            if isinstance(delta.get("content"), str):
                out.append(delta["content"])
            _tool_call_texts(delta.get("tool_calls"), out)
    return out


def request_turns(task: Task, payload: JSON) -> list[Turn]:
    """The request as conversation turns for the judge: assistant messages are ``Agent`` turns, every other
    message (system, user, tool results), the prompt and the embeddings inputs ``User`` turns."""
    if task != "llm/v1/chat":
        return [Turn("User", text) for text in request_texts(task, payload)]
    turns: list[Turn] = []
    for message in payload.get("messages") or ():
        if isinstance(message, dict):
            texts: list[str] = []
            _content_texts(message.get("content"), texts)
            _tool_call_texts(message.get("tool_calls"), texts)
            if texts:
                turns.append(Turn("Agent" if message.get("role") == "assistant" else "User", "\n".join(texts)))
    return turns
