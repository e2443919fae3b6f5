"""The ``cohere`` provider: Cohere's v2 API (``/v2/chat``, ``/v2/embed``) with ``Authorization: Bearer``.

Chat and completions (the prompt as one user message) go to ``/v2/chat``; embeddings to ``/v2/embed``.
References: https://docs.cohere.com/reference/chat, https://docs.cohere.com/reference/chat-stream,
https://docs.cohere.com/reference/embed, https://docs.cohere.com/reference/errors
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import orjson

from ..errors import BadUpstreamResponse, ProviderConfigError, UnsupportedTask, UpstreamError
from ..json_types import JSON
from ..spec import CohereConfig, Task
from ..spec.capabilities import PROVIDER_TASKS
from .base import CallContext, Provider, StreamDecoder, UpstreamRequest, loads
from .cohere_chat import chat_body, chat_completion_from_response
from .cohere_embed import embed_body, embeddings_from_response
from .cohere_stream import CohereStreamDecoder
from .completions_via_chat import answer_for, chat_payload_for, stream_for

DEFAULT_API_BASE = "https://api.cohere.com"


class CohereProvider(Provider):
    name: ClassVar[str] = "cohere"
    tasks: ClassVar[frozenset[Task]] = PROVIDER_TASKS["cohere"]

    @property
    def config(self) -> CohereConfig:
        config = self.model.provider_config
        if not isinstance(config, CohereConfig):
            raise ProviderConfigError("the cohere provider needs cohereConfig")
        return config

    async def build_request(self, ctx: CallContext, payload: JSON) -> UpstreamRequest:
        if ctx.task == "llm/v1/embeddings":
            path, body = "/v2/embed", embed_body(payload)
        else:
            chat = chat_payload_for(ctx.task, payload, self.name)
            path, body = "/v2/chat", chat_body(chat)
        key = self.credentials.resolve(self.config.cohere_api_key, self.config.cohere_api_key_plaintext, field="cohereApiKey")
        headers = {
            "authorization": f"Bearer {key}",
            "content-type": "application/json",
            "accept": "text/event-stream" if ctx.stream else "application/json",
        }
        base = (self.config.cohere_api_base or DEFAULT_API_BASE).rstrip("/")
        return UpstreamRequest(url=base + path, headers=headers, body=orjson.dumps({"model": self.model.name, **body}))

    def parse_response(self, ctx: CallContext, payload: JSON, body: bytes) -> JSON:
        response = loads(body, self.name)
        try:
            if ctx.task == "llm/v1/embeddings":
                return embeddings_from_response(response, self.model.name, payload.get("encoding_format"))
            chat = chat_completion_from_response(response, self.model.name)
        except (KeyError, TypeError, AttributeError):
            raise BadUpstreamResponse("cohere returned a response that could not be read") from None
        return answer_for(ctx.task, chat)

    def stream_decoder(self, ctx: CallContext, payload: JSON) -> StreamDecoder:
        if ctx.task == "llm/v1/embeddings":
            raise UnsupportedTask("embeddings cannot be streamed")
        decoder = CohereStreamDecoder(self.model.name, include_usage=ctx.include_usage)
        return stream_for(ctx.task, decoder)

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        """Cohere answers ``{"message": ...}``; its non-standard 498 (invalid token) becomes 401."""
        error = super().parse_error(status, body, headers)
        if status == 498:
            error = UpstreamError(error.message, status=401, headers=error.headers)
        return error
