"""The OpenAI wire format, shared by every adapter whose provider speaks it (OpenAI, Azure OpenAI, custom
OpenAI-compatible APIs, Databricks serving endpoints).

The payload passes through unchanged (tools, tool_choice, response_format, logit_bias, penalties, seed, n,
multi-part content and any other parameter); only ``model``, ``stream`` and ``stream_options`` are set.
Reference: https://platform.openai.com/docs/api-reference/chat/create and
https://platform.openai.com/docs/api-reference/chat-streaming (chunk shape, ``stream_options.include_usage``).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import orjson

from ..errors import BadUpstreamResponse, UpstreamError
from ..json_types import JSON
from ..spec import TASKS, Task
from ..sse import SSEEvent, SSEParser
from .base import (
    CallContext,
    Provider,
    StreamDecoder,
    UpstreamRequest,
    decode_each,
    error_message_from_body,
    event_object,
    loads,
    with_chunks_before,
)

TASK_PATHS: dict[Task, str] = {
    "llm/v1/chat": "chat/completions",
    "llm/v1/completions": "completions",
    "llm/v1/embeddings": "embeddings",
}
"""The OpenAI API path of each task, relative to the API base."""


class OpenAIStreamDecoder(StreamDecoder):
    """OpenAI-format SSE (``data: <chunk>`` ... ``data: [DONE]``) into chunks.

    A ``data:`` event with an ``error`` key is an error in the stream (the OpenAI SDK treats it so) and raises
    :class:`UpstreamError`. Chunks that carry neither choices nor usage (Azure's ``prompt_filter_results``
    annotations) are dropped.
    """

    __slots__ = ("_parser", "_provider", "done")

    def __init__(self, provider: str) -> None:
        self._parser = SSEParser()
        self._provider = provider
        self.done = False

    def feed(self, data: bytes) -> list[JSON]:
        return self._chunks(self._parser.feed(data))

    def close(self) -> list[JSON]:
        """The body ended: it must have ended with ``data: [DONE]``, or the answer may be cut short."""
        chunks = self._chunks(self._parser.close())
        if not self.done:
            raise with_chunks_before(
                BadUpstreamResponse(f"{self._provider}'s stream ended without its terminator (the answer may be cut "
                                    "short)"), chunks)
        return chunks

    def _chunks(self, events: list[SSEEvent]) -> list[JSON]:
        return decode_each(events, self._event)

    def _event(self, event: SSEEvent) -> list[JSON]:
        data = event.data
        if data == "[DONE]":
            self.done = True
            return []
        chunk = event_object(data, self._provider)
        if chunk.get("error"):
            message = error_message_from_body(data.encode()) or "error in the stream"
            raise UpstreamError(f"{self._provider} error: {message}", status=502)
        if not chunk.get("choices") and chunk.get("usage") is None:
            return []
        return [chunk]


class OpenAICompatibleProvider(Provider):
    """Base of the adapters that speak OpenAI's wire format; subclasses give URLs and auth headers."""

    tasks: ClassVar[frozenset[Task]] = frozenset(TASKS)
    ask_stream_usage: ClassVar[bool] = True
    """Add ``stream_options.include_usage`` to streaming requests."""

    _urls: dict[Task, str]

    def _init_urls(self) -> None:
        self._urls = {task: self.url_for(task) for task in TASKS}

    @abstractmethod
    def url_for(self, task: Task) -> str:
        """The full URL of ``task`` (computed once)."""

    @abstractmethod
    async def headers(self) -> dict[str, str]:
        """Fresh request headers with authentication (credentials are resolved per call)."""

    def body_model(self) -> str | None:
        """The ``model`` to put in the body, or None to leave it out."""
        return self.model.name

    async def build_request(self, ctx: CallContext, payload: JSON) -> UpstreamRequest:
        body = dict(payload)
        model = self.body_model()
        if model is None:
            body.pop("model", None)
        else:
            body["model"] = model
        if ctx.stream:
            body["stream"] = True
            if self.ask_stream_usage and ctx.include_usage:
                options = body.get("stream_options")
                body["stream_options"] = (
                    {**options, "include_usage": True} if isinstance(options, dict) else {"include_usage": True}
                )
        else:
            body.pop("stream_options", None)
        return UpstreamRequest(self._urls[ctx.task], await self.headers(), orjson.dumps(body))

    def parse_response(self, ctx: CallContext, payload: JSON, body: bytes) -> JSON:
        data = loads(body, self.name)
        if not isinstance(data, dict):
            raise BadUpstreamResponse(f"{self.name} returned a response that is not a JSON object")
        return data

    def stream_decoder(self, ctx: CallContext, payload: JSON) -> StreamDecoder:
        return OpenAIStreamDecoder(self.name)


def join_url(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path


def bearer_headers(token: str) -> dict[str, str]:
    """JSON request headers authenticated with ``Authorization: Bearer <token>``."""
    return {"Content-Type": "application/json", "Authorization": "Bearer " + token}
