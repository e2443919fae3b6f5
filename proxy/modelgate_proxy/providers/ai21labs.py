"""The ``ai21labs`` provider: AI21's Jamba chat completions with ``Authorization: Bearer``.

Chat goes to ``POST /studio/v1/chat/completions``. Completions go there too, the prompt as one user message:
AI21 retired the Jurassic-2 ``complete`` endpoints (end of life November 14, 2024) and merged completion into
the Jamba chat endpoint (https://docs.ai21.com/docs/jurassic-2-models,
https://docs.ai21.com/docs/migrating-from-jurassic-to-jamba). AI21 has no embeddings API for Jamba, so
embeddings are refused with a 400.
Reference: https://docs.ai21.com/reference/jamba-1-6-api-ref
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import orjson

from ..errors import BadUpstreamResponse, ProviderConfigError, UnsupportedTask, UpstreamError
from ..json_types import JSON
from ..spec import Ai21LabsConfig, Task
from ..spec.capabilities import PROVIDER_TASKS
from .ai21labs_chat import AI21StreamDecoder, chat_body, chat_completion_from_response
from .base import CallContext, Provider, StreamDecoder, UpstreamRequest, loads
from .completions_via_chat import answer_for, chat_payload_for, stream_for

DEFAULT_API_BASE = "https://api.ai21.com"


class AI21LabsProvider(Provider):
    name: ClassVar[str] = "ai21labs"
    tasks: ClassVar[frozenset[Task]] = PROVIDER_TASKS["ai21labs"]

    @property
    def config(self) -> Ai21LabsConfig:
        config = self.model.provider_config
        if not isinstance(config, Ai21LabsConfig):
            raise ProviderConfigError("the ai21labs provider needs ai21labsConfig")
        return config

    async def build_request(self, ctx: CallContext, payload: JSON) -> UpstreamRequest:
        if ctx.task == "llm/v1/embeddings":
            raise UnsupportedTask("ai21labs has no embeddings API; serve llm/v1/embeddings from another provider")
        chat = chat_payload_for(ctx.task, payload, self.name)
        body = {"model": self.model.name, **chat_body(chat)}
        key = self.credentials.resolve(
            self.config.ai21labs_api_key, self.config.ai21labs_api_key_plaintext, field="ai21labsApiKey"
        )
        headers = {
            "authorization": f"Bearer {key}",
            "content-type": "application/json",
            "accept": "text/event-stream" if ctx.stream else "application/json",
        }
        base = (self.config.ai21labs_api_base or DEFAULT_API_BASE).rstrip("/")
        return UpstreamRequest(url=f"{base}/studio/v1/chat/completions", headers=headers, body=orjson.dumps(body))

    def parse_response(self, ctx: CallContext, payload: JSON, body: bytes) -> JSON:
        response = loads(body, self.name)
        try:
            chat = chat_completion_from_response(response, self.model.name)
        except (KeyError, TypeError, AttributeError):
            raise BadUpstreamResponse("ai21labs returned a response that could not be read") from None
        return answer_for(ctx.task, chat)

    def stream_decoder(self, ctx: CallContext, payload: JSON) -> StreamDecoder:
        decoder = AI21StreamDecoder(self.model.name, include_usage=ctx.include_usage)
        return stream_for(ctx.task, decoder)

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        """AI21's FastAPI errors: ``{"detail": "..."}`` (read by the base class) or, for a request it refuses, a
        ``detail`` list of ``{"loc", "msg", "type"}``, whose locations and messages make the message."""
        error = super().parse_error(status, body, headers)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return error
        detail = data.get("detail") if isinstance(data, dict) else None
        if not isinstance(detail, list):
            return error
        problems = [
            f"{'.'.join(str(p) for p in item.get('loc') or [])}: {item['msg']}".lstrip(": ")
            for item in detail
            if isinstance(item, dict) and isinstance(item.get("msg"), str)
        ]
        if not problems:
            return error
        return UpstreamError(f"{self.name} error: {'; '.join(problems)}", status=status, headers=error.headers)
