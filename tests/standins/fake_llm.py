"""A deterministic fake model behind the OpenAI-format stand-ins, and the ASGI plumbing they share.

Magic words in the last user message make a stand-in misbehave on purpose:
``__fail_500__`` (500), ``__rate_limit__`` (429 with retry-after), ``__endless__`` (a stream that sends a
chunk every few ms until the caller goes away), ``__cut__`` (the stream's connection is dropped mid-way),
``__error_event__`` (an error event inside a 200 stream), ``__slow__`` (the answer takes 0.3 s).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import struct
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass
class Stats:
    """What a stand-in saw; tests assert on it."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    """Each request: path, query, headers (lower-case names), parsed body."""
    active_streams: int = 0
    streams_started: int = 0
    streams_finished: int = 0

    @property
    def last(self) -> dict[str, Any]:
        return self.requests[-1]


def last_user_text(body: dict[str, Any]) -> str:
    if "messages" in body:
        for message in reversed(body["messages"]):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return content
                if isinstance(content, list):
                    return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        return ""
    prompt = body.get("prompt", "")
    return prompt if isinstance(prompt, str) else " ".join(map(str, prompt))


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


def chat_answer(body: dict[str, Any], model: str) -> dict[str, Any]:
    text = last_user_text(body)
    tools = body.get("tools")
    usage = {"prompt_tokens": _tokens(text), "completion_tokens": 0, "total_tokens": 0}
    if tools and body.get("tool_choice") != "none":
        name = tools[0]["function"]["name"]
        message: dict[str, Any] = {
            "role": "assistant", "content": None, "refusal": None,
            "tool_calls": [{"id": "call_abc123", "type": "function",
                            "function": {"name": name, "arguments": '{"location": "Boston, MA"}'}}],
        }
        finish = "tool_calls"
        usage["completion_tokens"] = 17
    else:
        reply = f"You said: {text}"
        message = {"role": "assistant", "content": reply, "refusal": None, "annotations": []}
        finish = "stop"
        usage["completion_tokens"] = _tokens(reply)
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    n = body.get("n") or 1
    return {
        "id": "chatcmpl-standin", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": i, "message": message, "logprobs": None, "finish_reason": finish} for i in range(n)],
        "usage": usage, "service_tier": "default", "system_fingerprint": "fp_standin",
    }


def completion_answer(body: dict[str, Any], model: str) -> dict[str, Any]:
    text = last_user_text(body)
    reply = "This is indeed a test"
    return {
        "id": "cmpl-standin", "object": "text_completion", "created": int(time.time()), "model": model,
        "system_fingerprint": "fp_standin",
        "choices": [{"text": reply, "index": 0, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": _tokens(text), "completion_tokens": 5, "total_tokens": _tokens(text) + 5},
    }


def embedding_answer(body: dict[str, Any], model: str) -> dict[str, Any]:
    inputs = body["input"]
    items = [inputs] if isinstance(inputs, str) else list(inputs)
    data = []
    for i, item in enumerate(items):
        vector = [float(len(str(item))), 0.5, -0.25]
        embedding: Any = vector
        if body.get("encoding_format") == "base64":
            embedding = base64.b64encode(struct.pack("<3f", *vector)).decode()
        data.append({"object": "embedding", "embedding": embedding, "index": i})
    tokens = sum(_tokens(str(x)) for x in items)
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def chat_chunks(body: dict[str, Any], model: str, *, usage_chunk: bool, usage_every_chunk: bool = False) -> list[dict[str, Any]]:
    """The OpenAI chunk sequence for a chat answer (role, content pieces or tool-call deltas, finish, usage)."""
    answer = chat_answer(body, model)
    message = answer["choices"][0]["message"]
    base = {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": answer["created"], "model": model,
            "system_fingerprint": "fp_standin"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        c = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if usage_every_chunk:
            c["usage"] = answer["usage"]
        return c

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
    if message.get("tool_calls"):
        call = message["tool_calls"][0]
        chunks.append(chunk({"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                             "function": {"name": call["function"]["name"], "arguments": ""}}]}))
        args = call["function"]["arguments"]
        for i in range(0, len(args), 6):
            chunks.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[i:i + 6]}}]}))
        chunks.append(chunk({}, "tool_calls"))
    else:
        words = message["content"].split(" ")
        for i, word in enumerate(words):
            chunks.append(chunk({"content": word if i == 0 else " " + word}))
        chunks.append(chunk({}, "stop"))
    if usage_chunk:
        chunks.append({**base, "choices": [], "usage": answer["usage"]})
    return chunks


def completion_chunks(body: dict[str, Any], model: str, *, usage_chunk: bool) -> list[dict[str, Any]]:
    answer = completion_answer(body, model)
    base = {"id": "cmpl-standin", "object": "text_completion", "created": answer["created"], "model": model}
    chunks = [{**base, "choices": [{"text": w, "index": 0, "logprobs": None, "finish_reason": None}]}
              for w in ["This", " is", " indeed", " a", " test"]]
    chunks.append({**base, "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}]})
    if usage_chunk:
        chunks.append({**base, "choices": [], "usage": answer["usage"]})
    return chunks


async def read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


async def send_json(send: Send, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
    body = orjson.dumps(payload)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class CutConnection(RuntimeError):
    """Raised inside a started response: the ASGI server then drops the connection mid-body."""


async def send_sse(
    send: Send, receive: Receive, stats: Stats, events: list[bytes], *, endless: bool = False, cut: bool = False,
    delay: float = 0.0,
) -> None:
    """Stream ``events``; watches the caller so a dropped connection ends the stream (and the count) at once."""
    stats.active_streams += 1
    stats.streams_started += 1
    gone = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    watcher = asyncio.ensure_future(watch())
    try:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream; charset=utf-8")]})
        i = 0
        while not gone.is_set():
            if endless:
                event = events[1 + i % max(1, len(events) - 2)] if len(events) > 2 else events[0]
            elif i < len(events):
                event = events[i]
            else:
                break
            if cut and i == len(events) // 2:
                raise CutConnection("stand-in drops the connection on purpose")
            await send({"type": "http.response.body", "body": event, "more_body": True})
            i += 1
            if delay or endless:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(gone.wait(), delay or 0.005)
        if not gone.is_set():
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
    except OSError:
        pass
    finally:
        watcher.cancel()
        stats.active_streams -= 1
        stats.streams_finished += 1


def sse_event(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"
