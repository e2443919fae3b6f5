"""The ``anthropic`` provider: Anthropic's Messages API (``POST /v1/messages``).

Chat and completions (the prompt as one user message) go to the Messages API; embeddings are refused (Anthropic
has no embeddings API). Auth is the ``x-api-key`` header with ``anthropic-version: 2023-06-01``.
Reference: https://docs.anthropic.com/en/api/messages
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import orjson

from ..errors import BadUpstreamResponse, ProviderConfigError, UnsupportedTask, UpstreamError
from ..json_types import JSON
from ..spec import AnthropicConfig, Task
from ..spec.capabilities import PROVIDER_TASKS
from .anthropic_messages import ERROR_STATUS, chat_completion_from_message, messages_body
from .anthropic_stream import AnthropicStreamDecoder
from .base import CallContext, Provider, StreamDecoder, UpstreamRequest, loads
from .completions_via_chat import answer_for, chat_payload_for, stream_for

DEFAULT_API_BASE = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"


class AnthropicProvider(Provider):
    name: ClassVar[str] = "anthropic"
    tasks: ClassVar[frozenset[Task]] = PROVIDER_TASKS["anthropic"]

    @property
    def config(self) -> AnthropicConfig:
        config = self.model.provider_config
        if not isinstance(config, AnthropicConfig):
            raise ProviderConfigError("the anthropic provider needs anthropicConfig")
        return config

    async def build_request(self, ctx: CallContext, payload: JSON) -> UpstreamRequest:
        _check_task(ctx.task)
        chat = chat_payload_for(ctx.task, payload, self.name)
        body = {"model": self.model.name, **messages_body(chat)}
        key = self.credentials.resolve(
            self.config.anthropic_api_key, self.config.anthropic_api_key_plaintext, field="anthropicApiKey"
        )
        headers = {
            "x-api-key": key,
            "anthropic-version": ANTHROPIC_VERSION,
            "content-type": "application/json",
            "accept": "text/event-stream" if ctx.stream else "application/json",
        }
        base = (self.config.anthropic_api_base or DEFAULT_API_BASE).rstrip("/")
        return UpstreamRequest(url=f"{base}/v1/messages", headers=headers, body=orjson.dumps(body))

    def parse_response(self, ctx: CallContext, payload: JSON, body: bytes) -> JSON:
        message = loads(body, self.name)
        try:
            chat = chat_completion_from_message(message, self.model.name)
        except (KeyError, TypeError, AttributeError):
            raise BadUpstreamResponse("anthropic returned a message that could not be read") from None
        return answer_for(ctx.task, chat)

    def stream_decoder(self, ctx: CallContext, payload: JSON) -> StreamDecoder:
        decoder = AnthropicStreamDecoder(self.model.name, include_usage=ctx.include_usage)
        return stream_for(ctx.task, decoder)

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        """Anthropic's ``{"type": "error", "error": {"type", "message"}}``; its 529 (overloaded) becomes 503."""
        error = super().parse_error(status, body, headers)
        if status == 529:
            error = UpstreamError(error.message, status=ERROR_STATUS["overloaded_error"], headers=error.headers)
        return error


def _check_task(task: Task) -> None:
    if task == "llm/v1/embeddings":
        raise UnsupportedTask("anthropic has no embeddings API; serve llm/v1/embeddings from another provider")
