"""Cohere v2 chat stream → OpenAI ``chat.completion.chunk`` objects.

Events (https://docs.cohere.com/reference/chat-stream): ``message-start`` (id), ``content-start`` /
``content-delta`` / ``content-end`` (text), ``tool-plan-delta``, ``tool-call-start`` / ``tool-call-delta`` /
``tool-call-end`` (one call each, ``delta.message.tool_calls`` is a single object), ``citation-*``, ``debug``
and ``message-end`` (finish reason and usage, or ``delta.error``). A ``data: [DONE]`` line, which the SDK
tolerates, is ignored.
"""

from __future__ import annotations

from ..errors import BadUpstreamResponse
from ..json_types import JSON
from ..sse import SSEEvent, SSEParser
from . import openai_objects as oa
from .base import StreamDecoder, decode_each, event_object, with_chunks_before
from .cohere_chat import check_finish, finish_reason, usage_from


class CohereStreamDecoder(StreamDecoder):
    def __init__(self, model: str, *, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.sse = SSEParser()
        self.id = ""
        self.created = oa.now()
        self.tool_index: dict[int, int] = {}
        self.ended = False

    def feed(self, data: bytes) -> list[JSON]:
        return self._translate(self.sse.feed(data))

    def close(self) -> list[JSON]:
        chunks = self._translate(self.sse.close())
        if not self.ended:
            raise with_chunks_before(BadUpstreamResponse("cohere's stream ended before message-end"), chunks)
        return chunks

    def _translate(self, events: list[SSEEvent]) -> list[JSON]:
        return decode_each(events, self._sse_event)

    def _sse_event(self, sse: SSEEvent) -> list[JSON]:
        if sse.data.strip() == "[DONE]":
            return []
        event = event_object(sse.data, "cohere")
        try:
            return self._event(event)
        except (KeyError, TypeError, AttributeError):
            raise BadUpstreamResponse("cohere sent a malformed stream event") from None

    def _chunk(self, delta: JSON, finish: str | None = None) -> JSON:
        return oa.chat_chunk(id=self.id, model=self.model, created=self.created, delta=delta, finish_reason=finish)

    def _event(self, event: JSON) -> list[JSON]:
        kind = event["type"]
        if kind == "message-start":
            self.id = event.get("id") or self.id
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content-delta":
            text = event["delta"]["message"]["content"].get("text") or ""
            return [self._chunk({"content": text})] if text else []
        if kind == "tool-call-start":
            call = event["delta"]["message"]["tool_calls"]
            index = self.tool_index[event["index"]] = len(self.tool_index)
            opening = oa.tool_call(call["id"], call["function"]["name"], call["function"].get("arguments") or "")
            return [self._chunk({"tool_calls": [{"index": index, **opening}]})]
        if kind == "tool-call-delta":
            arguments = event["delta"]["message"]["tool_calls"]["function"].get("arguments") or ""
            index = self.tool_index[event["index"]]
            return [self._chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})] if arguments else []
        if kind == "message-end":
            return self._end(event.get("delta") or {})
        return []

    def _end(self, delta: JSON) -> list[JSON]:
        self.ended = True
        check_finish(delta.get("finish_reason"), delta.get("error"))
        chunks = [self._chunk({}, finish_reason(delta.get("finish_reason")) or "stop")]
        if self.include_usage:
            chunks.append(oa.usage_chunk(id=self.id, model=self.model, created=self.created, usage=usage_from(delta.get("usage"))))
        return chunks
