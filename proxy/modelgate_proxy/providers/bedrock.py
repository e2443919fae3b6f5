"""Amazon Bedrock: chat and completions through the Converse API, embeddings through InvokeModel, SigV4-signed.

Why Converse: it is one request and stream shape for all four ``bedrockProvider`` families (Anthropic, Cohere,
AI21 Labs, Amazon) including tool use, where InvokeModel would need four native bodies and four native stream
formats. Embedding models are not served by Converse, so ``llm/v1/embeddings`` uses InvokeModel with the Titan
or Cohere Embed body. Reference: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_Operations_Amazon_Bedrock_Runtime.html
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import quote

import orjson
from yarl import URL

from ..errors import ProviderConfigError, UnsupportedTask, UpstreamError
from ..json_types import JSON
from ..spec import ExternalModel, Task
from ..spec.capabilities import PROVIDER_TASKS, bedrock_config_problem
from ..spec.provider_configs import AmazonBedrockConfig
from .aws_eventstream import EXCEPTION_STATUS
from .aws_signing import AwsCredentialSource, sign
from .base import CallContext, Credentials, HttpClient, Provider, StreamDecoder, UpstreamRequest, loads, retry_headers
from .bedrock_embeddings import embeddings_from_answer, embeddings_request
from .completions_via_chat import answer_for, chat_payload_for, stream_for
from .converse import ConverseStreamDecoder, chat_from_converse, converse_request

EVENT_STREAM = "application/vnd.amazon.eventstream"


class BedrockProvider(Provider):
    name: ClassVar[str] = "amazon-bedrock"
    tasks: ClassVar[frozenset[Task]] = PROVIDER_TASKS["amazon-bedrock"]
    stream_media_types: ClassVar[tuple[str, ...]] = (EVENT_STREAM,)

    def __init__(self, model: ExternalModel, credentials: Credentials, http: HttpClient) -> None:
        super().__init__(model, credentials, http)
        config = model.amazon_bedrock_config
        if config is None:
            raise ProviderConfigError("amazon-bedrock needs amazonBedrockConfig")
        if (problem := bedrock_config_problem(config)) is not None:
            raise ProviderConfigError(problem)
        self.config: AmazonBedrockConfig = config
        self.family = config.bedrock_provider
        self.base = (config.aws_endpoint_url or f"https://bedrock-runtime.{config.aws_region}.amazonaws.com").rstrip("/")
        self.aws = AwsCredentialSource(config, credentials)

    def url(self, operation: str) -> str:
        """The operation URL, in the exact form the HTTP client puts on the wire (that form is what is signed).
        The model ID is percent-encoded as a path segment (``/`` of ARNs becomes ``%2F``); ``:`` is a legal path
        character and the HTTP client sends it as is."""
        return str(URL(f"{self.base}/model/{quote(self.model.name, safe='-._~:')}/{operation}"))

    async def build_request(self, ctx: CallContext, payload: JSON) -> UpstreamRequest:
        if ctx.task == "llm/v1/embeddings":
            if ctx.stream:
                raise UnsupportedTask("embeddings cannot be streamed")
            body, operation, accept = embeddings_request(payload, self.family), "invoke", "application/json"
        else:
            chat = chat_payload_for(ctx.task, payload, self.name)
            body = converse_request(chat, self.family)
            operation, accept = ("converse-stream", EVENT_STREAM) if ctx.stream else ("converse", "application/json")
        data = orjson.dumps(body)
        url = self.url(operation)
        headers = {"Content-Type": "application/json", "Accept": accept}
        signed = sign(await self.aws.get(), self.config.aws_region, url, data, headers)
        return UpstreamRequest(url=url, headers=signed, body=data)

    def parse_response(self, ctx: CallContext, payload: JSON, body: bytes) -> JSON:
        answer = loads(body, self.name)
        if ctx.task == "llm/v1/embeddings":
            return embeddings_from_answer(answer, self.family, self.model.name, payload.get("encoding_format"))
        chat = chat_from_converse(answer, self.model.name)
        return answer_for(ctx.task, chat)

    def stream_decoder(self, ctx: CallContext, payload: JSON) -> StreamDecoder:
        if ctx.task == "llm/v1/embeddings":
            raise UnsupportedTask("embeddings cannot be streamed")
        decoder = ConverseStreamDecoder(self.model.name, include_usage=ctx.include_usage)
        return stream_for(ctx.task, decoder)

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        """Bedrock errors: ``{"message": ...}`` with the exception name in ``x-amzn-ErrorType``
        (``ValidationException:http://internal.amazon.com/coral/...``)."""
        code = ""
        for key, value in headers.items():
            if key.lower() == "x-amzn-errortype":
                code = value.split(":", 1)[0].split("#")[-1]
        message = ""
        try:
            data = orjson.loads(body)
            if isinstance(data, dict):
                message = str(data.get("message") or data.get("Message") or "")
                code = code or str(data.get("__type", "")).split("#")[-1]
        except orjson.JSONDecodeError:
            message = body.decode("utf-8", errors="replace")[:500]
        mapped = EXCEPTION_STATUS.get(code.lower(), status)
        label = f" ({code})" if code else ""
        text = message or f"the provider answered HTTP {status}"
        return UpstreamError(f"{self.name} error{label}: {text}", status=mapped, headers=retry_headers(headers))
