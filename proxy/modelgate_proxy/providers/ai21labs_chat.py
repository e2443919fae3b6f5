"""OpenAI chat ↔ AI21's Jamba chat completions (``POST /studio/v1/chat/completions``).

Jamba's API is OpenAI-like: the same roles, function tools and ``tool_calls``, ``max_tokens``, ``temperature``
(0 to 2, as OpenAI), ``top_p``, ``stop``, ``n``, ``response_format`` (text / json_object) and AI21's own
``documents``. Message content is a string (text parts are joined). The answers lack ``object``, ``created``
and ``model``, which are filled in; streamed chunks carry usage, which is moved to OpenAI's final usage chunk.
Reference: https://docs.ai21.com/reference/jamba-1-6-api-ref
"""

from __future__ import annotations

from ..errors import BadRequest, BadUpstreamResponse
from ..json_types import JSON
from ..sse import SSEEvent, SSEParser
from . import openai_objects as oa
from .base import StreamDecoder, decode_each, event_object, with_chunks_before
from .messages import text_of
from .params import drop_unsupported, rename

UNSUPPORTED = (
    "seed", "frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "top_logprobs", "tool_choice",
    "parallel_tool_calls", "store", "service_tier",
)  # fmt: skip
"""OpenAI parameters the Jamba API does not document (dropped at their default, refused otherwise)."""


def chat_body(payload: JSON) -> JSON:
    """The Jamba chat body for an OpenAI chat payload, without ``model``."""
    body = dict(payload)
    for name in ("user", "metadata", "stream_options"):  # OpenAI-only labels; usage is always streamed
        body.pop(name, None)
    drop_unsupported(body, UNSUPPORTED, "ai21labs")
    messages = body.pop("messages", None)
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise BadRequest("messages must be a non-empty list of objects", param="messages")
    rename(body, "max_completion_tokens", "max_tokens")
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") not in ("text", "json_object"):
        raise BadRequest("ai21labs supports response_format text and json_object only", param="response_format")
    return {"messages": [_message(m) for m in messages], **body}


def _message(message: JSON) -> JSON:
    role = message.get("role")
    if role not in ("system", "developer", "user", "assistant", "tool"):
        raise BadRequest(f"unsupported message role {role!r}", param="messages")
    out: JSON = {"role": "system" if role == "developer" else role}
    content = message.get("content")
    out["content"] = None if content is None and role == "assistant" else text_of(content, role=str(role))
    if role == "assistant" and message.get("tool_calls"):
        out["tool_calls"] = message["tool_calls"]
    if role == "tool":
        out["tool_call_id"] = message.get("tool_call_id")
    return out


def chat_completion_from_response(response: JSON, model: str) -> JSON:
    """A Jamba answer with the OpenAI fields it lacks; raises KeyError/TypeError if malformed."""
    choices = [
        {
            "index": choice.get("index", i),
            "message": choice["message"],
            "logprobs": choice.get("logprobs"),
            "finish_reason": choice.get("finish_reason"),
        }
        for i, choice in enumerate(response["choices"])
    ]
    if not all(isinstance(c["message"], dict) for c in choices):
        raise TypeError("message")
    return {
        "id": response["id"],
        "object": "chat.completion",
        "created": response.get("created") or oa.now(),
        "model": response.get("model") or model,
        "choices": choices,
        "usage": response.get("usage"),
    }


class AI21StreamDecoder(StreamDecoder):
    """``data: <chunk>`` ... ``data: [DONE]`` → OpenAI chunks, usage moved to a last chunk."""

    def __init__(self, model: str, *, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.sse = SSEParser()
        self.created = oa.now()
        self.id = ""
        self.usage: JSON | None = None
        self.done = False

    def feed(self, data: bytes) -> list[JSON]:
        return self._translate(self.sse.feed(data))

    def close(self) -> list[JSON]:
        chunks = self._translate(self.sse.close())
        if not self.done:
            raise with_chunks_before(BadUpstreamResponse("ai21labs's stream ended before [DONE]"), chunks)
        return chunks

    def _translate(self, events: list[SSEEvent]) -> list[JSON]:
        return decode_each(events, self._event)

    def _event(self, event: SSEEvent) -> list[JSON]:
        if event.data.strip() == "[DONE]":
            return self._done()
        chunk = event_object(event.data, "ai21labs")
        try:
            return self._chunk(chunk)
        except (KeyError, TypeError, AttributeError):
            raise BadUpstreamResponse("ai21labs sent a malformed stream chunk") from None

    def _chunk(self, chunk: JSON) -> list[JSON]:
        self.id = chunk["id"]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        if not chunk["choices"]:
            return []
        choice = chunk["choices"][0]
        delta = dict(choice["delta"])
        if delta.get("tool_calls"):
            delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(delta["tool_calls"])]
        return [oa.chat_chunk(id=self.id, model=self.model, created=self.created, delta=delta, finish_reason=choice.get("finish_reason"))]

    def _done(self) -> list[JSON]:
        self.done = True
        if self.include_usage and self.usage is not None:
            return [oa.usage_chunk(id=self.id, model=self.model, created=self.created, usage=self.usage)]
        return []
