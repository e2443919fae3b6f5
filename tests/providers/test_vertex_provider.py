"""VertexProvider against the Vertex AI and OAuth token stand-ins: tokens, Gemini, embeddings, Claude on Vertex."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
import pytest

from modelgate_proxy.errors import ProviderConfigError, UnsupportedTask, UpstreamError
from modelgate_proxy.providers.vertex import VertexProvider
from modelgate_proxy.spec import ExternalModel, Task
from tests.providers import direct
from tests.providers.helpers import NoHttp, PlainCredentials, ctx, joined_arguments, joined_content
from tests.providers.vertex_keys import EMAIL, ServiceAccountKey, new_key
from tests.standins.server import serve_app
from tests.standins.vertex_api import VertexStandIn

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": False}}}


@pytest.fixture(scope="module")
def key() -> ServiceAccountKey:
    return new_key()


@pytest.fixture(scope="module")
def standin(key: ServiceAccountKey) -> Iterator[tuple[VertexStandIn, str]]:
    stand = VertexStandIn(accounts={EMAIL: (key.key_id, key.public)})
    with serve_app(stand.app) as url:
        yield stand, url


def vertex_model(url: str, key_file: str, name: str, task: Task = "llm/v1/chat") -> ExternalModel:
    return ExternalModel.model_validate({"name": name, "provider": "google-cloud-vertex-ai", "task": task,
                                         "googleCloudVertexAiConfig": {"projectId": "my-project", "region": "us-central1",
                                                                       "privateKeyPlaintext": key_file,
                                                                       "vertexApiBase": url}})


def provider_for(standin: tuple[VertexStandIn, str], key: ServiceAccountKey, name: str, task: Task = "llm/v1/chat") -> VertexProvider:
    _, url = standin
    return VertexProvider(vertex_model(url, key.key_file(f"{url}/token"), name, task), PlainCredentials(), NoHttp())


def answer(provider: VertexProvider, payload: dict[str, Any], task: Task = "llm/v1/chat") -> dict[str, Any]:
    return direct.answer(provider, ctx(task), payload)


def stream(provider: VertexProvider, payload: dict[str, Any], task: Task = "llm/v1/chat") -> list[dict[str, Any]]:
    return direct.stream(provider, ctx(task, stream=True), payload, piece=3)[1]


def test_gemini_chat_with_cached_token(standin: tuple[VertexStandIn, str], key: ServiceAccountKey) -> None:
    stand, _ = standin
    provider = provider_for(standin, key, "gemini-2.0-flash-001")
    before = stand.token_requests

    async def two_calls() -> list[tuple[int, Mapping[str, str], bytes]]:
        payload = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi there"}]}
        requests = await asyncio.gather(*(provider.build_request(ctx(), payload) for _ in range(5)))
        return [await direct.send(r) for r in requests]

    results = asyncio.run(two_calls())
    assert [r[0] for r in results] == [200] * 5
    assert stand.token_requests - before == 1  # one refresh for five concurrent requests
    chat = provider.parse_response(ctx(), {}, results[0][2])
    assert chat["choices"][0]["message"]["content"] == "Echo: hi there"
    assert chat["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    sent = stand.calls[-1]
    assert sent["method"] == "generateContent"
    assert sent["body"]["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent["body"]["contents"] == [{"role": "user", "parts": [{"text": "hi there"}]}]


def test_gemini_tool_round_trip_and_parameters(standin: tuple[VertexStandIn, str], key: ServiceAccountKey) -> None:
    stand, _ = standin
    provider = provider_for(standin, key, "gemini-2.0-flash-001")
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather?"}]
    first = answer(provider, {"messages": messages, "tools": [WEATHER], "temperature": 1.5, "max_tokens": 64, "top_k": 20})
    body = stand.calls[-1]["body"]
    assert body["generationConfig"] == {"temperature": 1.5, "maxOutputTokens": 64, "topK": 20}
    assert "additionalProperties" not in body["tools"][0]["functionDeclarations"][0]["parameters"]
    message = first["choices"][0]["message"]
    assert first["choices"][0]["finish_reason"] == "tool_calls"
    call_ = message["tool_calls"][0]
    assert orjson.loads(call_["function"]["arguments"]) == {"city": "Paris"}
    messages += [message, {"role": "tool", "tool_call_id": call_["id"], "content": '{"temp_c": 15}'}]
    second = answer(provider, {"messages": messages, "tools": [WEATHER]})
    assert second["choices"][0]["message"]["content"] == 'Tool said: {"temp_c":15}'
    contents = stand.calls[-1]["body"]["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[2]["parts"][0] == {"functionResponse": {"name": "get_weather", "response": {"temp_c": 15}}}


def test_gemini_stream_with_text_and_function_call(standin: tuple[VertexStandIn, str], key: ServiceAccountKey) -> None:
    stand, _ = standin
    provider = provider_for(standin, key, "gemini-2.0-flash-001")
    chunks = stream(provider, {"messages": [{"role": "user", "content": "stream this now"}]})
    assert stand.calls[-1]["method"] == "streamGenerateContent"
    assert stand.calls[-1]["query"] == "alt=sse"
    assert joined_content(chunks) == "Echo: stream this now"
    assert chunks[-1]["usage"]["completion_tokens"] == 4
    chunks = stream(provider, {"messages": [{"role": "user", "content": "tool?"}], "tools": [WEATHER]})
    assert orjson.loads(joined_arguments(chunks)) == {"city": "Paris"}
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finishes == ["tool_calls"]


def test_gemini_completions_and_length(standin: tuple[VertexStandIn, str], key: ServiceAccountKey) -> None:
    provider = provider_for(standin, key, "gemini-2.0-flash-001", "llm/v1/completions")
    out = answer(provider, {"prompt": "a b c d e", "max_tokens": 3}, "llm/v1/completions")
    assert out["object"] == "text_completion"
    assert out["choices"][0] == {"text": "Echo: a b", "index": 0, "logprobs": None, "finish_reason": "length"}


def test_quota_error_keeps_retry_hint(standin: tuple[VertexStandIn, str], key: ServiceAccountKey) -> None:
    provider = provider_for(standin, key, "gemini-2.0-flash-001")
    with pytest.raises(UpstreamError) as info:
        answer(provider, {"messages": [{"role": "user", "content": "[quota]"}]})
    assert info.value.status == 429
    assert info.value.headers["retry-after"] == "7"
    assert "RESOURCE_EXHAUSTED" in info.value.message


def test_text_embeddings(standin: tuple[VertexStandIn, str], key: ServiceAccountKey) -> None:
    stand, _ = standin
    provider = provider_for(standin, key, "text-embedding-005", "llm/v1/embeddings")
    out = answer(provider, {"input": ["one two", "three"], "dimensions": 64, "task_type": "RETRIEVAL_QUERY"},
                 "llm/v1/embeddings")
    assert [len(d["embedding"]) for d in out["data"]] == [64, 64]
    assert out["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    assert stand.calls[-1]["body"] == {
        "instances": [{"content": "one two", "task_type": "RETRIEVAL_QUERY"}, {"content": "three", "task_type": "RETRIEVAL_QUERY"}],
        "parameters": {"outputDimensionality": 64},
    }


def test_claude_on_vertex(standin: tuple[VertexStandIn, str], key: ServiceAccountKey) -> None:
    stand, _ = standin
    provider = provider_for(standin, key, "claude-3-5-haiku@20241022")
    out = answer(provider, {"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hello claude"}]})
    assert out["choices"][0]["message"]["content"] == "Echo: hello claude"
    sent = stand.calls[-1]
    assert (sent["publisher"], sent["model"], sent["method"]) == ("anthropic", "claude-3-5-haiku@20241022", "rawPredict")
    assert sent["body"]["anthropic_version"] == "vertex-2023-10-16"
    assert "model" not in sent["body"]
    assert sent["body"]["system"] == "sys"
    chunks = stream(provider, {"messages": [{"role": "user", "content": "weather"}], "tools": [WEATHER]})
    assert stand.calls[-1]["method"] == "streamRawPredict"
    assert orjson.loads(joined_arguments(chunks)) == {"city": "Paris"}
    with pytest.raises(UnsupportedTask):
        asyncio.run(provider.build_request(ctx("llm/v1/embeddings"), {"input": "x"}))


def test_bad_key_signature_is_refused_by_token_endpoint(standin: tuple[VertexStandIn, str], key: ServiceAccountKey) -> None:
    _, url = standin
    impostor = new_key(key.key_id)  # same key id and email, different private key
    provider = VertexProvider(vertex_model(url, impostor.key_file(f"{url}/token"), "gemini-2.0-flash-001"),
                              PlainCredentials(), NoHttp())
    with pytest.raises(UpstreamError) as info:
        asyncio.run(provider.build_request(ctx(), {"messages": [{"role": "user", "content": "x"}]}))
    assert info.value.status == 403
    assert "invalid_grant" in info.value.message
    assert "PRIVATE KEY" not in info.value.message


def test_unissued_token_is_401(standin: tuple[VertexStandIn, str], key: ServiceAccountKey) -> None:
    provider = provider_for(standin, key, "gemini-2.0-flash-001")
    request = asyncio.run(provider.build_request(ctx(), {"messages": [{"role": "user", "content": "x"}]}))
    request.headers["Authorization"] = "Bearer ya29.forged"
    status, _, body = asyncio.run(direct.send(request))
    assert status == 401
    assert orjson.loads(body)["error"]["status"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    ("value", "message"),
    [("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----", "PEM private key alone"),
     ('{"type": "service_account", "private_key": "x", "token_uri": "https://t"}', "client_email"),
     ('{"type": "authorized_user", "client_id": "x"}', "service_account"),
     ("not json", "not a service-account JSON key")],
)
def test_unusable_keys_get_clear_errors(value: str, message: str) -> None:
    provider = VertexProvider(vertex_model("http://127.0.0.1:9", value, "gemini-2.0-flash-001"), PlainCredentials(), NoHttp())
    with pytest.raises(ProviderConfigError, match=message) as info:
        asyncio.run(provider.build_request(ctx(), {"messages": [{"role": "user", "content": "x"}]}))
    assert "abc" not in info.value.message


def test_pem_helper_is_really_a_pem(key: ServiceAccountKey) -> None:
    assert key.pem().startswith("-----BEGIN PRIVATE KEY-----")


def test_token_near_expiry_is_refreshed(key: ServiceAccountKey) -> None:
    stand = VertexStandIn(accounts={EMAIL: (key.key_id, key.public)}, token_lifetime=60)
    with serve_app(stand.app) as url:
        provider = VertexProvider(vertex_model(url, key.key_file(f"{url}/token"), "gemini-2.0-flash-001"),
                                  PlainCredentials(), NoHttp())
        for _ in range(2):
            status, _, _ = direct.call(provider, ctx(), {"messages": [{"role": "user", "content": "x"}]})
            assert status == 200
    # google-auth refreshes a token a few minutes before it expires; a 60 s token is never reused.
    assert stand.token_requests == 2
