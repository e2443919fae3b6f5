"""Amazon Bedrock and Google Cloud Vertex AI through the real proxy, the official ``openai`` client as the caller,
the stand-ins as the providers (SigV4 verified by the Bedrock stand-in, OAuth tokens by the Vertex one)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai
import orjson
import pytest

from modelgate_proxy.endpoints.services import NO_AUTH, GatewaySettings
from modelgate_proxy.server.app import create_app
from tests.providers.e2e import ENDPOINT, manifest
from tests.providers.vertex_keys import EMAIL, new_key
from tests.standins.bedrock_api import BedrockStandIn, Key
from tests.standins.server import serve_app
from tests.standins.vertex_api import VertexStandIn

ACCESS_KEY, SECRET_KEY = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOOLS: Any = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]  # fmt: skip


@contextmanager
def proxy_for(provider: str, model: str, task: str, config_field: str, config: dict[str, Any]) -> Iterator[openai.OpenAI]:
    with serve_app(create_app([manifest(provider, model, task, config_field, config)], gateway=GatewaySettings(auth=NO_AUTH))) as proxy_url:
        yield openai.OpenAI(base_url=f"{proxy_url}/serving-endpoints", api_key="caller-token", max_retries=0, timeout=20)


@pytest.fixture(scope="module")
def bedrock() -> Iterator[tuple[BedrockStandIn, str]]:
    stand = BedrockStandIn(keys={ACCESS_KEY: Key(SECRET_KEY)})
    with serve_app(stand.app) as url:
        yield stand, url


def bedrock_config(url: str, family: str, secret: str = SECRET_KEY) -> dict[str, Any]:
    return {"awsRegion": "us-east-1", "bedrockProvider": family, "awsEndpointUrl": url,
            "awsAccessKeyIdPlaintext": ACCESS_KEY, "awsSecretAccessKeyPlaintext": secret}


def test_bedrock_chat_stream_and_tools(bedrock: tuple[BedrockStandIn, str]) -> None:
    stand, url = bedrock
    with proxy_for("amazon-bedrock", "anthropic.claude-3-haiku-20240307-v1:0", "llm/v1/chat",
                   "amazonBedrockConfig", bedrock_config(url, "anthropic")) as client:
        answer = client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "hello bedrock"}],
                                                max_tokens=20, extra_body={"top_k": 7})
        assert answer.choices[0].message.content == "Echo: hello bedrock"
        assert answer.usage is not None
        assert answer.usage.completion_tokens == 3
        assert stand.calls[-1]["body"]["additionalModelRequestFields"] == {"top_k": 7}
        assert stand.calls[-1]["model"] == "anthropic.claude-3-haiku-20240307-v1:0"

        chunks = list(client.chat.completions.create(
            model=ENDPOINT, messages=[{"role": "user", "content": "stream it"}], stream=True,
            stream_options={"include_usage": True}))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: stream it"
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens == 3

        first = client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "Weather?"}], tools=TOOLS)
        call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
        assert first.choices[0].finish_reason == "tool_calls"
        assert orjson.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
        second = client.chat.completions.create(model=ENDPOINT, tools=TOOLS, messages=[
            {"role": "user", "content": "Weather?"}, first.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "15C"}])
        assert second.choices[0].message.content == "Tool said: 15C"

        streamed = list(client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "w?"}],
                                                       tools=TOOLS, stream=True))
        arguments = "".join(tc.function.arguments or "" for c in streamed if c.choices
                            for tc in c.choices[0].delta.tool_calls or [] if tc.function)
        assert orjson.loads(arguments) == {"city": "Paris"}


def test_bedrock_errors_reach_the_caller(bedrock: tuple[BedrockStandIn, str]) -> None:
    _, url = bedrock
    with proxy_for("amazon-bedrock", "amazon.nova-lite-v1:0", "llm/v1/chat", "amazonBedrockConfig",
                   bedrock_config(url, "amazon")) as client:
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "[throttle]"}])
        with pytest.raises(openai.BadRequestError, match="temperature"):
            client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "x"}], temperature=1.7)
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "[garbage]"}])
        assert info.value.status_code == 502
    with proxy_for("amazon-bedrock", "amazon.nova-lite-v1:0", "llm/v1/chat", "amazonBedrockConfig",
                   bedrock_config(url, "amazon", secret="wrong")) as client:
        with pytest.raises(openai.PermissionDeniedError) as denied:
            client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "x"}])
        assert "wrong" not in str(denied.value)


def test_bedrock_embeddings(bedrock: tuple[BedrockStandIn, str]) -> None:
    _, url = bedrock
    with proxy_for("amazon-bedrock", "amazon.titan-embed-text-v2:0", "llm/v1/embeddings", "amazonBedrockConfig",
                   bedrock_config(url, "amazon")) as client:
        result = client.embeddings.create(model=ENDPOINT, input="hello world", dimensions=256)
        assert len(result.data[0].embedding) == 256
        assert result.usage.prompt_tokens == 2
    with proxy_for("amazon-bedrock", "cohere.embed-english-v3", "llm/v1/embeddings", "amazonBedrockConfig",
                   bedrock_config(url, "cohere")) as client:
        result = client.embeddings.create(model=ENDPOINT, input=["a", "b"])
        assert [len(d.embedding) for d in result.data] == [1024, 1024]


@pytest.fixture(scope="module")
def vertex() -> Iterator[tuple[VertexStandIn, str, str]]:
    key = new_key()
    stand = VertexStandIn(accounts={EMAIL: (key.key_id, key.public)})
    with serve_app(stand.app) as url:
        yield stand, url, key.key_file(f"{url}/token")


def vertex_config(url: str, key_file: str) -> dict[str, Any]:
    return {"projectId": "my-project", "region": "us-central1", "privateKeyPlaintext": key_file, "vertexApiBase": url}


def test_vertex_gemini_chat_stream_tools(vertex: tuple[VertexStandIn, str, str]) -> None:
    stand, url, key_file = vertex
    with proxy_for("google-cloud-vertex-ai", "gemini-2.0-flash-001", "llm/v1/chat", "googleCloudVertexAiConfig",
                   vertex_config(url, key_file)) as client:
        answer = client.chat.completions.create(model=ENDPOINT, temperature=1.5, messages=[
            {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello gemini"}])
        assert answer.choices[0].message.content == "Echo: hello gemini"
        assert stand.calls[-1]["body"]["generationConfig"] == {"temperature": 1.5}
        chunks = list(client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "a b c"}],
                                                     stream=True, stream_options={"include_usage": True}))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: a b c"
        assert chunks[-1].usage is not None
        first = client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "Weather?"}], tools=TOOLS)
        call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
        second = client.chat.completions.create(model=ENDPOINT, tools=TOOLS, messages=[
            {"role": "user", "content": "Weather?"}, first.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"}])
        assert second.choices[0].message.content == 'Tool said: {"content":"sunny"}'
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "[quota]"}])
        assert info.value.response.headers.get("retry-after") == "7"


def test_vertex_embeddings_and_claude(vertex: tuple[VertexStandIn, str, str]) -> None:
    stand, url, key_file = vertex
    with proxy_for("google-cloud-vertex-ai", "text-embedding-005", "llm/v1/embeddings", "googleCloudVertexAiConfig",
                   vertex_config(url, key_file)) as client:
        result = client.embeddings.create(model=ENDPOINT, input=["one two", "three"])
        assert [len(d.embedding) for d in result.data] == [768, 768]
        assert result.usage.prompt_tokens == 3
    with proxy_for("google-cloud-vertex-ai", "claude-3-5-haiku@20241022", "llm/v1/chat", "googleCloudVertexAiConfig",
                   vertex_config(url, key_file)) as client:
        answer = client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "hi claude"}])
        assert answer.choices[0].message.content == "Echo: hi claude"
        chunks = list(client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "s"}], stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: s"
        assert stand.calls[-1]["method"] == "streamRawPredict"


def test_vertex_bad_key_is_a_clear_error(vertex: tuple[VertexStandIn, str, str]) -> None:
    _, url, _ = vertex
    with proxy_for("google-cloud-vertex-ai", "gemini-2.0-flash-001", "llm/v1/chat", "googleCloudVertexAiConfig",
                   vertex_config(url, "-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----")) as client:
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "x"}])
        assert info.value.status_code == 503
        assert "PEM private key alone" in str(info.value)
        assert "MII" not in str(info.value)
