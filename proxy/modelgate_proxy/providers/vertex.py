"""Google Cloud Vertex AI: Gemini chat, text embeddings, and Anthropic Claude models on Vertex.

Routing by model name: ``claude-*`` → ``publishers/anthropic/models/{model}:rawPredict`` (``:streamRawPredict``)
with the Anthropic Messages body (``anthropic_version: vertex-2023-10-16``, no ``model``), reusing the
Anthropic translation; ``llm/v1/embeddings`` → ``publishers/google/models/{model}:predict``; anything else →
Gemini ``publishers/google/models/{model}:generateContent`` (``:streamGenerateContent?alt=sse``).
Authentication: ``Authorization: Bearer`` with an OAuth token from the service-account key (google_oauth).
References: https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest and
https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import quote

import orjson

from ..errors import BadUpstreamResponse, ProviderConfigError, UnsupportedTask, UpstreamError
from ..json_types import JSON
from ..spec import ExternalModel, Task
from ..spec.capabilities import PROVIDER_TASKS
from ..spec.provider_configs import GoogleCloudVertexAiConfig
from .anthropic_messages import chat_completion_from_message, messages_body
from .anthropic_stream import AnthropicStreamDecoder
from .base import CallContext, Credentials, HttpClient, Provider, StreamDecoder, UpstreamRequest, loads
from .completions_via_chat import answer_for, chat_payload_for, stream_for
from .gemini import GeminiStreamDecoder, chat_from_gemini, generate_content_request
from .google_oauth import ServiceAccountTokens
from .vertex_embeddings import embeddings_from_predictions, predict_request

ANTHROPIC_VERSION = "vertex-2023-10-16"


class VertexProvider(Provider):
    name: ClassVar[str] = "google-cloud-vertex-ai"
    tasks: ClassVar[frozenset[Task]] = PROVIDER_TASKS["google-cloud-vertex-ai"]

    def __init__(self, model: ExternalModel, credentials: Credentials, http: HttpClient) -> None:
        super().__init__(model, credentials, http)
        config = model.google_cloud_vertex_ai_config
        if config is None:
            raise ProviderConfigError("google-cloud-vertex-ai needs googleCloudVertexAiConfig")
        self.config: GoogleCloudVertexAiConfig = config
        self.claude = model.name.startswith("claude")
        default = (
            "https://aiplatform.googleapis.com"
            if config.region == "global"
            else f"https://{config.region}-aiplatform.googleapis.com"
        )
        self.base = (config.vertex_api_base or default).rstrip("/")
        self.tokens = ServiceAccountTokens()

    def url(self, ctx: CallContext) -> str:
        publisher = "anthropic" if self.claude else "google"
        if self.claude:
            method = "streamRawPredict" if ctx.stream else "rawPredict"
        elif ctx.task == "llm/v1/embeddings":
            method = "predict"
        else:
            method = "streamGenerateContent?alt=sse" if ctx.stream else "generateContent"
        model = quote(self.model.name, safe="@-._~")
        return (f"{self.base}/v1/projects/{self.config.project_id}/locations/{self.config.region}"
                f"/publishers/{publisher}/models/{model}:{method}")

    async def build_request(self, ctx: CallContext, payload: JSON) -> UpstreamRequest:
        if ctx.task == "llm/v1/embeddings":
            if self.claude:
                raise UnsupportedTask("Claude models on Vertex AI do not serve llm/v1/embeddings")
            if ctx.stream:
                raise UnsupportedTask("embeddings cannot be streamed")
            body = predict_request(payload)
        else:
            chat = chat_payload_for(ctx.task, payload, self.name)
            body = self._claude_body(chat, ctx.stream) if self.claude else generate_content_request(chat)
        key = self.credentials.resolve(
            self.config.private_key, self.config.private_key_plaintext, field="googleCloudVertexAiConfig.privateKey"
        )
        token = await self.tokens.token(key)
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if ctx.stream else "application/json",
        }
        return UpstreamRequest(url=self.url(ctx), headers=headers, body=orjson.dumps(body))

    @staticmethod
    def _claude_body(chat: JSON, stream: bool) -> JSON:
        body = {"anthropic_version": ANTHROPIC_VERSION, **messages_body(chat)}
        body.pop("model", None)
        if stream:
            body["stream"] = True
        else:
            body.pop("stream", None)
        return body

    def parse_response(self, ctx: CallContext, payload: JSON, body: bytes) -> JSON:
        answer = loads(body, self.name)
        if ctx.task == "llm/v1/embeddings":
            return embeddings_from_predictions(answer, self.model.name, payload.get("encoding_format"))
        if self.claude:
            try:
                chat = chat_completion_from_message(answer, self.model.name)
            except (KeyError, TypeError, AttributeError):
                raise BadUpstreamResponse(f"{self.name} returned a Claude message that could not be read") from None
        else:
            chat = chat_from_gemini(answer, self.model.name)
        return answer_for(ctx.task, chat)

    def stream_decoder(self, ctx: CallContext, payload: JSON) -> StreamDecoder:
        if ctx.task == "llm/v1/embeddings":
            raise UnsupportedTask("embeddings cannot be streamed")
        decoder: StreamDecoder
        if self.claude:
            decoder = AnthropicStreamDecoder(self.model.name, include_usage=ctx.include_usage)
        else:
            decoder = GeminiStreamDecoder(self.model.name, include_usage=ctx.include_usage)
        return stream_for(ctx.task, decoder)

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        """Google's ``{"error": {"code", "message", "status", "details"}}`` (Claude models may answer with
        Anthropic's error body, which the base class reads too). A ``RetryInfo`` delay becomes ``retry-after``."""
        error = super().parse_error(status, body, headers)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return error
        google = data.get("error") if isinstance(data, dict) else None
        if not isinstance(google, dict):
            return error
        label = f" ({google['status']})" if isinstance(google.get("status"), str) else ""
        for detail in google.get("details") or []:
            delay = detail.get("retryDelay") if isinstance(detail, dict) else None
            match = re.fullmatch(r"(\d+)(\.\d+)?s", delay) if isinstance(delay, str) else None
            if match:
                error.headers.setdefault("retry-after", str(int(match.group(1)) + (1 if match.group(2) else 0)))
        message = google.get("message") or f"the provider answered HTTP {status}"
        return UpstreamError(f"{self.name} error{label}: {message}", status=status, headers=error.headers)
