"""Anthropic's Messages event stream → OpenAI ``chat.completion.chunk`` objects.

Events (https://docs.anthropic.com/en/docs/build-with-claude/streaming): ``message_start``, then per content
block ``content_block_start`` / ``content_block_delta`` (``text_delta``, ``input_json_delta``, ...) /
``content_block_stop``, then ``message_delta`` (stop reason, cumulative usage) and ``message_stop``; ``ping``
may come at any time and ``error`` may arrive after the HTTP 200. Tool-use blocks become OpenAI tool-call deltas
numbered in order of appearance. Extended thinking
(https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#streaming-thinking): a ``thinking`` block
streams ``thinking_delta`` (sent as ``reasoning_content`` deltas) then a ``signature_delta``; on
``content_block_stop`` the whole signed block is sent as a ``thinking_blocks`` delta (``messages.THINKING_BLOCKS``).
A ``redacted_thinking`` block comes whole in ``content_block_start`` and is sent so.

:class:`AnthropicEventDecoder` takes parsed events, so framings other than SSE (Bedrock's event stream) can
feed it; :class:`AnthropicStreamDecoder` adds the SSE parsing.
"""

from __future__ import annotations

from ..errors import BadUpstreamResponse, UpstreamError
from ..json_types import JSON
from ..sse import SSEEvent, SSEParser
from . import openai_objects as oa
from .anthropic_messages import ERROR_STATUS, finish_reason, usage_from
from .base import StreamDecoder, decode_each, event_object, with_chunks_before


class AnthropicEventDecoder:
    """Translates one Anthropic stream event (a parsed JSON object) at a time."""

    def __init__(self, model: str, *, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id = ""
        self.created = oa.now()
        self.usage: JSON = {}
        self.tool_index: dict[int, int] = {}
        self.thinking: dict[int, JSON] = {}
        """Content block index → the thinking block being streamed."""
        self.finish: str | None = None
        self.started = False
        self.stopped = False

    def event(self, event: JSON) -> list[JSON]:
        kind = event.get("type")
        try:
            handler = _HANDLERS.get(str(kind))
            return handler(self, event) if handler else []
        except (KeyError, TypeError, AttributeError):
            raise BadUpstreamResponse(f"anthropic sent a malformed {kind} event") from None

    def _chunk(self, delta: JSON, finish: str | None = None) -> JSON:
        return oa.chat_chunk(id=self.id, model=self.model, created=self.created, delta=delta, finish_reason=finish)

    def _message_start(self, event: JSON) -> list[JSON]:
        message = event["message"]
        self.id, self.started = message["id"], True
        self.model = message.get("model") or self.model
        self.usage = dict(message.get("usage") or {})
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, event: JSON) -> list[JSON]:
        block = event["content_block"]
        if block["type"] == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if block["type"] == "tool_use":
            index = self.tool_index[event["index"]] = len(self.tool_index)
            call = {"index": index, **oa.tool_call(block["id"], block["name"], "")}
            return [self._chunk({"tool_calls": [call]})]
        if block["type"] == "thinking":
            text = str(block.get("thinking") or "")
            self.thinking[event["index"]] = {"type": "thinking", "thinking": text, "signature": str(block.get("signature") or "")}
            return [self._chunk({"reasoning_content": text})] if text else []
        if block["type"] == "redacted_thinking":
            return [self._chunk({"thinking_blocks": [{"type": "redacted_thinking", "data": str(block["data"])}]})]
        return []

    def _block_delta(self, event: JSON) -> list[JSON]:
        delta = event["delta"]
        if delta["type"] == "text_delta" and delta["text"]:
            return [self._chunk({"content": delta["text"]})]
        if delta["type"] == "input_json_delta" and delta["partial_json"]:
            index = self.tool_index[event["index"]]
            return [self._chunk({"tool_calls": [{"index": index, "function": {"arguments": delta["partial_json"]}}]})]
        if delta["type"] == "thinking_delta":
            self.thinking[event["index"]]["thinking"] += delta["thinking"]
            return [self._chunk({"reasoning_content": delta["thinking"]})] if delta["thinking"] else []
        if delta["type"] == "signature_delta":
            self.thinking[event["index"]]["signature"] += delta["signature"]
        return []

    def _block_stop(self, event: JSON) -> list[JSON]:
        block = self.thinking.pop(event["index"], None)
        return [self._chunk({"thinking_blocks": [block]})] if block is not None else []

    def _message_delta(self, event: JSON) -> list[JSON]:
        self.finish = finish_reason(event["delta"].get("stop_reason")) or self.finish
        self.usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
        return []

    def _message_stop(self, event: JSON) -> list[JSON]:
        self.stopped = True
        chunks = [self._chunk({}, self.finish or "stop")]
        if self.include_usage:
            chunks.append(oa.usage_chunk(id=self.id, model=self.model, created=self.created, usage=usage_from(self.usage)))
        return chunks

    def _error(self, event: JSON) -> list[JSON]:
        error = event.get("error") or {}
        status = ERROR_STATUS.get(str(error.get("type")), 502)
        raise UpstreamError(f"anthropic error: {error.get('message') or 'error event in the stream'}", status=status)

    def end(self) -> None:
        """The body ended: it must have ended with ``message_stop``."""
        if not self.stopped:
            raise BadUpstreamResponse("anthropic's stream ended before message_stop")


_HANDLERS = {
    "message_start": AnthropicEventDecoder._message_start,
    "content_block_start": AnthropicEventDecoder._block_start,
    "content_block_delta": AnthropicEventDecoder._block_delta,
    "content_block_stop": AnthropicEventDecoder._block_stop,
    "message_delta": AnthropicEventDecoder._message_delta,
    "message_stop": AnthropicEventDecoder._message_stop,
    "error": AnthropicEventDecoder._error,
}


class AnthropicStreamDecoder(StreamDecoder):
    """SSE bytes from ``POST /v1/messages`` with ``stream: true`` → OpenAI chunks."""

    def __init__(self, model: str, *, include_usage: bool) -> None:
        self.sse = SSEParser()
        self.events = AnthropicEventDecoder(model, include_usage=include_usage)

    def feed(self, data: bytes) -> list[JSON]:
        return self._translate(self.sse.feed(data))

    def close(self) -> list[JSON]:
        chunks = self._translate(self.sse.close())
        try:
            self.events.end()
        except BadUpstreamResponse as err:
            raise with_chunks_before(err, chunks) from None
        return chunks

    def _translate(self, events: list[SSEEvent]) -> list[JSON]:
        return decode_each(events, self._sse_event)

    def _sse_event(self, sse: SSEEvent) -> list[JSON]:
        return self.events.event(event_object(sse.data, "anthropic"))
