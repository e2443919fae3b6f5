"""AI21 Jamba translation, request and response, against recorded examples from AI21's reference and SDK."""

from __future__ import annotations

import orjson
import pytest

from modelgate_proxy.errors import BadRequest, BadUpstreamResponse, UnsupportedTask
from modelgate_proxy.providers.ai21labs import AI21LabsProvider
from tests.providers.helpers import NoHttp, PlainCredentials, build, ctx, external_model, feed_bytewise, joined_content

KEY = "ai21-unit-test"


def provider(task: str = "llm/v1/chat", base: str | None = None) -> AI21LabsProvider:
    config = {"ai21labsApiKeyPlaintext": KEY} | ({"ai21labsApiBase": base} if base else {})
    return AI21LabsProvider(external_model("ai21labs", "jamba-large", task, config), PlainCredentials(), NoHttp())  # type: ignore[arg-type]


def test_request_url_auth_and_parameters() -> None:
    payload = {
        "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "max_completion_tokens": 100, "temperature": 1.5, "top_p": 0.9, "stop": ["\n"], "n": 2,
        "documents": [{"content": "doc"}], "seed": None, "tool_choice": "auto", "user": "u",
    }  # fmt: skip
    request, body = build(provider(), ctx(), payload)
    assert request.url == "https://api.ai21.com/studio/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert body == {
        "model": "jamba-large",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "max_tokens": 100, "temperature": 1.5, "top_p": 0.9, "stop": ["\n"], "n": 2, "documents": [{"content": "doc"}],
    }  # fmt: skip


def test_base_url_override() -> None:
    request, _ = build(provider(base="http://127.0.0.1:9/"), ctx(), {"messages": [{"role": "user", "content": "x"}]})
    assert request.url == "http://127.0.0.1:9/studio/v1/chat/completions"


def test_tools_and_tool_history_pass_through() -> None:
    tools = [{"type": "function", "function": {"name": "get_delivery_date", "parameters": {"type": "object"}}}]
    call = {"id": "call_62136354", "type": "function", "function": {"name": "get_delivery_date", "arguments": '{"order_id":"order_12345"}'}}
    messages = [
        {"role": "user", "content": "When?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_62136354", "content": "2025-01-01"},
    ]
    _, body = build(provider(), ctx(), {"messages": messages, "tools": tools})
    assert body["tools"] == tools
    assert body["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "content": "2025-01-01", "tool_call_id": "call_62136354"},
    ]


@pytest.mark.parametrize(("param", "value"), [("tool_choice", "required"), ("seed", 1), ("response_format", {"type": "json_schema"})])
def test_unsupported_parameters_are_refused(param: str, value: object) -> None:
    with pytest.raises(BadRequest):
        build(provider(), ctx(), {"messages": [{"role": "user", "content": "x"}], param: value})


def test_images_are_refused() -> None:
    parts = [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]
    with pytest.raises(BadRequest):
        build(provider(), ctx(), {"messages": [{"role": "user", "content": parts}]})


def test_completions_through_chat_and_no_embeddings() -> None:
    request, body = build(provider("llm/v1/completions"), ctx("llm/v1/completions"), {"prompt": "One fish, two fish", "max_tokens": 9})
    assert request.url.endswith("/studio/v1/chat/completions")
    assert body["messages"] == [{"role": "user", "content": "One fish, two fish"}]
    with pytest.raises(UnsupportedTask):
        build(provider(), ctx("llm/v1/embeddings"), {"input": "x"})


# Recorded answer: AI21 SDK unit-test fixture (tests/unittests/clients/studio/resources/chat).
TOOL_ANSWER = {
    "id": "chat-cc8ce5c05f1d4ed9b722123ac4a0f267",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_62136354", "type": "function", "function": {"name": "get_delivery_date", "arguments": '{"order_id":"order_12345"}'}}]},
        "finish_reason": "tool_calls"}],
    "usage": {"prompt_tokens": 144, "completion_tokens": 14, "total_tokens": 158},
    "meta": {"requestDurationMillis": 236},
}  # fmt: skip


def test_response_gets_openai_fields() -> None:
    out = provider().parse_response(ctx(), {}, orjson.dumps(TOOL_ANSWER))
    assert (out["object"], out["model"], out["id"]) == ("chat.completion", "jamba-large", TOOL_ANSWER["id"])
    assert isinstance(out["created"], int)
    assert out["choices"][0]["message"] == TOOL_ANSWER["choices"][0]["message"]  # type: ignore[index]
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    assert out["usage"] == TOOL_ANSWER["usage"]
    assert "meta" not in out


def test_completions_response() -> None:
    answer = dict(TOOL_ANSWER, choices=[{"index": 0, "message": {"role": "assistant", "content": "red fish"}, "finish_reason": "stop"}])
    out = provider("llm/v1/completions").parse_response(ctx("llm/v1/completions"), {}, orjson.dumps(answer))
    assert out["object"] == "text_completion"
    assert out["choices"][0]["text"] == "red fish"


@pytest.mark.parametrize("body", [b"oops", b'{"id": "chat-1", "choices": "nope"}', b'{"choices": []}'])
def test_malformed_response_is_a_502(body: bytes) -> None:
    with pytest.raises(BadUpstreamResponse):
        provider().parse_response(ctx(), {}, body)


def test_errors_read_fastapi_detail() -> None:
    error = provider().parse_error(401, b'{"detail": "Forbidden: Bad or missing API token."}', {})
    assert error.status == 401
    assert error.message == "ai21labs error: Forbidden: Bad or missing API token."
    invalid = provider().parse_error(422, b'{"detail": [{"loc": ["body", "n"], "msg": "n must be 1 when stream is true", "type": "value_error"}]}', {})
    assert (invalid.status, invalid.message) == (422, "ai21labs error: body.n: n must be 1 when stream is true")


# Shape as recorded (Bedrock, same API): the first chunk carries the role and running usage.
STREAM = b"""data: {"id":"cmpl-981f7f176ad441459b94e45ee292a321","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}],"usage":{"prompt_tokens":44,"total_tokens":44,"completion_tokens":0}}

data: {"id":"cmpl-981f7f176ad441459b94e45ee292a321","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}

data: {"id":"cmpl-981f7f176ad441459b94e45ee292a321","choices":[{"index":0,"delta":{"content":" there"},"finish_reason":null}]}

data: {"id":"cmpl-981f7f176ad441459b94e45ee292a321","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":44,"total_tokens":50,"completion_tokens":6}}

data: [DONE]

"""


def test_stream_byte_by_byte_moves_usage_last() -> None:
    chunks = feed_bytewise(provider().stream_decoder(ctx(stream=True), {}), STREAM)
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "jamba-large" for c in chunks)
    assert joined_content(chunks) == "Hello there"
    assert all("usage" not in c for c in chunks[:-1])
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1] == {**chunks[-1], "choices": [], "usage": {"prompt_tokens": 44, "total_tokens": 50, "completion_tokens": 6}}


def test_stream_tool_call_deltas_have_an_index() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    data = b'data: {"id":"c","choices":[{"index":0,"delta":{"tool_calls":[' + orjson.dumps(call) + b']},"finish_reason":null}]}\n\ndata: [DONE]\n\n'
    chunks = feed_bytewise(provider().stream_decoder(ctx(stream=True, include_usage=False), {}), data)
    assert chunks[0]["choices"][0]["delta"]["tool_calls"] == [{"index": 0, **call}]


def test_stream_without_done_is_a_502() -> None:
    decoder = provider().stream_decoder(ctx(stream=True), {})
    decoder.feed(STREAM.split(b"data: [DONE]")[0])
    with pytest.raises(BadUpstreamResponse):
        decoder.close()
