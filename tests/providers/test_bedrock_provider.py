"""BedrockProvider against the Bedrock stand-in: SigV4 signing (checked by the stand-in), URLs, embeddings, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from modelgate_proxy.errors import BadRequest, ProviderConfigError, UnsupportedTask, UpstreamError
from modelgate_proxy.providers.bedrock import BedrockProvider
from modelgate_proxy.spec import ExternalModel, Task
from tests.providers import direct
from tests.providers.helpers import NoHttp, PlainCredentials, ctx, joined_arguments, joined_content
from tests.standins.bedrock_api import BedrockStandIn, Key
from tests.standins.server import serve_app

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


@pytest.fixture(scope="module")
def standin() -> Iterator[tuple[BedrockStandIn, str]]:
    stand = BedrockStandIn(keys={ACCESS_KEY: Key(SECRET_KEY), "ASIATEMP": Key("tempsecret", "the-session-token")})
    with serve_app(stand.app) as url:
        yield stand, url


def bedrock_model(url: str, name: str, family: str, task: Task = "llm/v1/chat", **config: Any) -> ExternalModel:
    block = {"awsRegion": "us-east-1", "bedrockProvider": family, "awsEndpointUrl": url,
             "awsAccessKeyIdPlaintext": ACCESS_KEY, "awsSecretAccessKeyPlaintext": SECRET_KEY, **config}
    block = {k: v for k, v in block.items() if v is not None}
    return ExternalModel.model_validate({"name": name, "provider": "amazon-bedrock", "task": task,
                                         "amazonBedrockConfig": block})


def chat(provider: BedrockProvider, payload: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return direct.answer(provider, ctx(**kw), payload)


def stream(provider: BedrockProvider, payload: dict[str, Any], task: Task = "llm/v1/chat") -> list[dict[str, Any]]:
    headers, chunks = direct.stream(provider, ctx(task, stream=True), payload, piece=5)
    assert headers["Content-Type"] == "application/vnd.amazon.eventstream"
    return chunks


def test_signed_converse_call_with_colon_model_id(standin: tuple[BedrockStandIn, str]) -> None:
    stand, url = standin
    provider = BedrockProvider(bedrock_model(url, "anthropic.claude-3-haiku-20240307-v1:0", "anthropic"),
                               PlainCredentials(), NoHttp())
    answer = chat(provider, {"messages": [{"role": "system", "content": "Be nice."},
                                          {"role": "user", "content": "hello there"}], "max_tokens": 100})
    assert answer["choices"][0]["message"]["content"] == "Echo: hello there"
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"]["completion_tokens"] == 3
    last = stand.calls[-1]
    assert last["model"] == "anthropic.claude-3-haiku-20240307-v1:0"
    assert last["operation"] == "converse"
    assert last["body"]["system"] == [{"text": "Be nice."}]
    assert last["headers"]["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert "/us-east-1/bedrock/aws4_request" in last["headers"]["authorization"]


def test_arn_model_id_is_one_path_segment(standin: tuple[BedrockStandIn, str]) -> None:
    stand, url = standin
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-lite-v1:0"
    provider = BedrockProvider(bedrock_model(url, arn, "amazon"), PlainCredentials(), NoHttp())
    chat(provider, {"messages": [{"role": "user", "content": "hi"}]})
    assert stand.calls[-1]["model"] == arn
    assert "%2F" in stand.calls[-1]["raw_path"]


def test_wrong_secret_is_refused_with_bedrock_error(standin: tuple[BedrockStandIn, str]) -> None:
    _, url = standin
    model = bedrock_model(url, "amazon.nova-lite-v1:0", "amazon", awsSecretAccessKeyPlaintext="not-the-secret")
    provider = BedrockProvider(model, PlainCredentials(), NoHttp())
    status, headers, body = direct.call(provider, ctx(), {"messages": [{"role": "user", "content": "hi"}]})
    assert status == 403
    assert headers["x-amzn-ErrorType"].startswith("InvalidSignatureException")
    error = provider.parse_error(status, body, headers)
    assert error.status == 403
    assert "InvalidSignatureException" in error.message
    assert "signature" in error.message
    assert "not-the-secret" not in error.message


def test_unknown_key_and_session_tokens(standin: tuple[BedrockStandIn, str]) -> None:
    _, url = standin
    unknown = BedrockProvider(bedrock_model(url, "amazon.nova-lite-v1:0", "amazon", awsAccessKeyIdPlaintext="AKIDNOPE"),
                              PlainCredentials(), NoHttp())
    status, headers, _ = direct.call(unknown, ctx(), {"messages": [{"role": "user", "content": "hi"}]})
    assert (status, headers["x-amzn-ErrorType"].split(":")[0]) == (403, "UnrecognizedClientException")
    temp = bedrock_model(url, "amazon.nova-lite-v1:0", "amazon", awsAccessKeyIdPlaintext="ASIATEMP",
                         awsSecretAccessKeyPlaintext="tempsecret", awsSessionTokenPlaintext="the-session-token")
    answer = chat(BedrockProvider(temp, PlainCredentials(), NoHttp()), {"messages": [{"role": "user", "content": "yo"}]})
    assert answer["choices"][0]["message"]["content"] == "Echo: yo"


def test_pod_credential_chain(standin: tuple[BedrockStandIn, str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, url = standin
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    model = bedrock_model(url, "amazon.nova-lite-v1:0", "amazon", awsAccessKeyIdPlaintext=None,
                          awsSecretAccessKeyPlaintext=None,
                          instanceProfileArn="arn:aws:iam::123456789012:instance-profile/bedrock")
    answer = chat(BedrockProvider(model, PlainCredentials(), NoHttp()), {"messages": [{"role": "user", "content": "chain"}]})
    assert answer["choices"][0]["message"]["content"] == "Echo: chain"


def test_tool_round_trip(standin: tuple[BedrockStandIn, str]) -> None:
    stand, url = standin
    provider = BedrockProvider(bedrock_model(url, "cohere.command-r-plus-v1:0", "cohere"), PlainCredentials(), NoHttp())
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    first = chat(provider, {"messages": messages, "tools": [tool]})
    message = first["choices"][0]["message"]
    assert first["choices"][0]["finish_reason"] == "tool_calls"
    call_ = message["tool_calls"][0]
    assert orjson.loads(call_["function"]["arguments"]) == {"city": "Paris"}
    messages += [message, {"role": "tool", "tool_call_id": call_["id"], "content": "15C and sunny"}]
    second = chat(provider, {"messages": messages, "tools": [tool]})
    assert second["choices"][0]["message"]["content"] == "Tool said: 15C and sunny"
    assert stand.calls[-1]["body"]["messages"][1]["content"][0]["toolUse"]["toolUseId"] == call_["id"]


def test_streamed_text_and_tool_calls(standin: tuple[BedrockStandIn, str]) -> None:
    _, url = standin
    provider = BedrockProvider(bedrock_model(url, "ai21.jamba-1-5-mini-v1:0", "ai21labs"), PlainCredentials(), NoHttp())
    chunks = stream(provider, {"messages": [{"role": "user", "content": "stream me please"}]})
    assert joined_content(chunks) == "Echo: stream me please"
    assert chunks[-1]["usage"]["completion_tokens"] == 4
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}, "n": {"type": "integer"}}, "required": ["q", "n"]}}}
    chunks = stream(provider, {"messages": [{"role": "user", "content": "look"}], "tools": [tool]})
    assert orjson.loads(joined_arguments(chunks)) == {"q": "Paris", "n": 3}
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]] == ["tool_calls"]


def test_completions_through_converse(standin: tuple[BedrockStandIn, str]) -> None:
    _, url = standin
    provider = BedrockProvider(bedrock_model(url, "amazon.titan-text-express-v1", "amazon", task="llm/v1/completions"),
                               PlainCredentials(), NoHttp())
    answer = chat(provider, {"prompt": "one two three four", "max_tokens": 2}, task="llm/v1/completions")
    assert answer["object"] == "text_completion"
    assert answer["choices"][0]["text"] == "Echo: one"
    assert answer["choices"][0]["finish_reason"] == "length"
    chunks = stream(provider, {"prompt": "streamed prompt"}, task="llm/v1/completions")
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == "Echo: streamed prompt"
    assert all(c["object"] == "text_completion" for c in chunks)


def test_provider_errors_map_to_caller_statuses(standin: tuple[BedrockStandIn, str]) -> None:
    _, url = standin
    provider = BedrockProvider(bedrock_model(url, "amazon.nova-lite-v1:0", "amazon"), PlainCredentials(), NoHttp())
    status, headers, body = direct.call(provider, ctx(), {"messages": [{"role": "user", "content": "[throttle]"}]})
    error = provider.parse_error(status, body, headers)
    assert (error.status, error.error_type) == (429, "rate_limit_exceeded")
    status, headers, body = direct.call(provider, ctx(), {"messages": [{"role": "user", "content": "x"}], "temperature": 1.5})
    error = provider.parse_error(status, body, headers)
    assert error.status == 400
    assert "temperature" in error.message
    model_error = provider.parse_error(424, b'{"message":"model failed"}',
                                       {"x-amzn-ErrorType": "ModelErrorException:http://internal.amazon.com/coral/"})
    assert model_error.status == 502


def test_titan_and_cohere_embeddings(standin: tuple[BedrockStandIn, str]) -> None:
    stand, url = standin
    titan = BedrockProvider(bedrock_model(url, "amazon.titan-embed-text-v2:0", "amazon", task="llm/v1/embeddings"),
                            PlainCredentials(), NoHttp())
    context = ctx("llm/v1/embeddings")
    payload = {"input": "hello world", "dimensions": 256}
    status, _, body = direct.call(titan, context, payload)
    assert status == 200
    answer = titan.parse_response(context, payload, body)
    assert len(answer["data"][0]["embedding"]) == 256
    assert answer["usage"]["prompt_tokens"] == 2
    assert stand.calls[-1]["body"] == {"inputText": "hello world", "dimensions": 256}
    with pytest.raises(BadRequest, match="one input"):
        asyncio.run(titan.build_request(context, {"input": ["a", "b"]}))

    cohere = BedrockProvider(bedrock_model(url, "cohere.embed-english-v3", "cohere", task="llm/v1/embeddings"),
                             PlainCredentials(), NoHttp())
    payload = {"input": ["a", "b", "c"], "input_type": "search_query", "encoding_format": "base64"}
    status, _, body = direct.call(cohere, context, payload)
    assert status == 200
    answer = cohere.parse_response(context, payload, body)
    assert [d["index"] for d in answer["data"]] == [0, 1, 2]
    assert isinstance(answer["data"][0]["embedding"], str)
    assert stand.calls[-1]["body"] == {"texts": ["a", "b", "c"], "input_type": "search_query"}


def test_families_without_embeddings_and_uc_credentials_are_refused(standin: tuple[BedrockStandIn, str]) -> None:
    _, url = standin
    claude = BedrockProvider(bedrock_model(url, "anthropic.claude-3-haiku-20240307-v1:0", "anthropic",
                                           task="llm/v1/embeddings"), PlainCredentials(), NoHttp())
    with pytest.raises(UnsupportedTask):
        asyncio.run(claude.build_request(ctx("llm/v1/embeddings"), {"input": "x"}))
    with pytest.raises(ProviderConfigError, match="Unity Catalog"):
        BedrockProvider(bedrock_model(url, "m", "amazon", awsAccessKeyIdPlaintext=None, awsSecretAccessKeyPlaintext=None,
                                      ucServiceCredentialName="cred"), PlainCredentials(), NoHttp())


def test_signature_covers_the_body(standin: tuple[BedrockStandIn, str]) -> None:
    _, url = standin
    provider = BedrockProvider(bedrock_model(url, "amazon.nova-lite-v1:0", "amazon"), PlainCredentials(), NoHttp())
    request = asyncio.run(provider.build_request(ctx(), {"messages": [{"role": "user", "content": "pay 10"}]}))
    request.body = request.body.replace(b"pay 10", b"pay 99")
    status, headers, _ = asyncio.run(direct.send(request))
    assert status == 403
    assert headers["x-amzn-ErrorType"].startswith("InvalidSignatureException")


def test_exception_frame_in_the_middle_of_a_stream(standin: tuple[BedrockStandIn, str]) -> None:
    _, url = standin
    provider = BedrockProvider(bedrock_model(url, "amazon.nova-lite-v1:0", "amazon"), PlainCredentials(), NoHttp())
    context = ctx(stream=True)
    status, _, body = direct.call(provider, context, {"messages": [{"role": "user", "content": "[stream-error] go"}], "stream": True})
    assert status == 200
    decoder = provider.stream_decoder(context, {})
    with pytest.raises(UpstreamError) as info:
        decoder.feed(body)
    assert info.value.status == 502
    assert "ModelStreamErrorException" in info.value.message
