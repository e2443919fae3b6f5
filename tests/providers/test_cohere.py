"""Cohere v2 translation, request and response, against recorded examples from Cohere's API reference."""

from __future__ import annotations

import base64
import struct

import orjson
import pytest

from modelgate_proxy.errors import BadRequest, BadUpstreamResponse, UpstreamError
from modelgate_proxy.providers.cohere import CohereProvider
from tests.providers.helpers import (
    NoHttp,
    PlainCredentials,
    build,
    ctx,
    external_model,
    feed_bytewise,
    joined_arguments,
    joined_content,
)

KEY = "co-unit-test"


def provider(task: str = "llm/v1/chat", name: str = "command-a-03-2025", base: str | None = None) -> CohereProvider:
    config = {"cohereApiKeyPlaintext": KEY} | ({"cohereApiBase": base} if base else {})
    return CohereProvider(external_model("cohere", name, task, config), PlainCredentials(), NoHttp())  # type: ignore[arg-type]


# --- request -------------------------------------------------------------------------------------------------------


def test_chat_request_url_auth_and_renamed_parameters() -> None:
    payload = {
        "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "max_completion_tokens": 50, "stop": "END", "top_p": 0.5, "top_k": 10, "seed": 3,
        "frequency_penalty": 0.2, "presence_penalty": 0.1, "temperature": 0.3, "user": "u-1", "n": 1,
        "safety_mode": "STRICT",
    }  # fmt: skip
    request, body = build(provider(), ctx(), payload)
    assert request.url == "https://api.cohere.com/v2/chat"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert body == {
        "model": "command-a-03-2025",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "max_tokens": 50, "stop_sequences": ["END"], "p": 0.5, "k": 10, "seed": 3,
        "frequency_penalty": 0.2, "presence_penalty": 0.1, "temperature": 0.3, "safety_mode": "STRICT",
    }  # fmt: skip


def test_base_url_override() -> None:
    request, _ = build(provider(base="https://cohere.internal"), ctx(), {"messages": [{"role": "user", "content": "x"}]})
    assert request.url == "https://cohere.internal/v2/chat"


def test_n_above_one_is_refused() -> None:
    with pytest.raises(BadRequest) as info:
        build(provider(), ctx(), {"messages": [{"role": "user", "content": "x"}], "n": 3})
    assert info.value.param == "n"


def test_tools_tool_history_and_tool_choice() -> None:
    tools = [
        {"type": "function", "function": {"name": "query_daily_sales_report", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}},
    ]
    call = {"id": "call_1", "type": "function", "function": {"name": "query_daily_sales_report", "arguments": '{"day": "2023-09-29"}'}}
    payload = {
        "messages": [
            {"role": "user", "content": "Sales on 2023-09-29?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": '{"total": 10}'},
        ],
        "tools": tools,
        "tool_choice": {"type": "function", "function": {"name": "query_daily_sales_report"}},
    }
    _, body = build(provider(), ctx(), payload)
    assert body["messages"][1] == {"role": "assistant", "tool_calls": [call]}
    assert body["messages"][2] == {"role": "tool", "tool_call_id": "call_1", "content": '{"total": 10}'}
    assert body["tools"] == tools[:1]
    assert body["tool_choice"] == "REQUIRED"


@pytest.mark.parametrize(("choice", "expected"), [("required", "REQUIRED"), ("none", "NONE"), ("auto", None)])
def test_tool_choice_strings(choice: str, expected: str | None) -> None:
    _, body = build(provider(), ctx(), {"messages": [{"role": "user", "content": "x"}], "tool_choice": choice})
    assert body.get("tool_choice") == expected


def test_json_schema_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    payload = {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}
    _, body = build(provider(), ctx(), payload)
    assert body["response_format"] == {"type": "json_object", "json_schema": schema}


def test_completions_go_through_chat() -> None:
    request, body = build(provider("llm/v1/completions"), ctx("llm/v1/completions"), {"prompt": "Say hi", "max_tokens": 5})
    assert request.url.endswith("/v2/chat")
    assert body["messages"] == [{"role": "user", "content": "Say hi"}]


def test_embeddings_request_default_and_overridden_input_type() -> None:
    p = provider("llm/v1/embeddings", name="embed-v4.0")
    request, body = build(p, ctx("llm/v1/embeddings"), {"input": "hello", "encoding_format": "base64", "dimensions": 256})
    assert request.url == "https://api.cohere.com/v2/embed"
    assert body == {"model": "embed-v4.0", "texts": ["hello"], "input_type": "search_document", "embedding_types": ["float"], "output_dimension": 256}
    _, body = build(p, ctx("llm/v1/embeddings"), {"input": ["hello", "goodbye"], "input_type": "classification"})
    assert (body["texts"], body["input_type"]) == (["hello", "goodbye"], "classification")


def test_embeddings_token_arrays_are_refused() -> None:
    with pytest.raises(BadRequest):
        build(provider("llm/v1/embeddings"), ctx("llm/v1/embeddings"), {"input": [[1, 2, 3]]})


# --- response ------------------------------------------------------------------------------------------------------

# Recorded examples from the /v2/chat and /v2/embed reference (cohere-openapi.yaml).
CHAT = {
    "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
    "message": {"role": "assistant", "content": [{"type": "text", "text": "LLMs stand for Large Language Models."}]},
    "finish_reason": "COMPLETE",
    "usage": {"billed_units": {"input_tokens": 5, "output_tokens": 418}, "tokens": {"input_tokens": 71, "output_tokens": 418}},
}
TOOL_CHAT = {
    "id": "2edfdf70-019c-4f7a-be20-3cdbfaa3dca6",
    "message": {"role": "assistant", "tool_plan": "I will use the tool.", "tool_calls": [
        {"id": "query_daily_sales_report_j3f0adww9pmr", "type": "function",
         "function": {"name": "query_daily_sales_report", "arguments": '{"day": "2023-09-29"}'}}]},
    "finish_reason": "TOOL_CALL",
    "usage": {"billed_units": {"input_tokens": 126, "output_tokens": 84}, "tokens": {"input_tokens": 1589, "output_tokens": 135}},
}  # fmt: skip
EMBED = {
    "id": "da6e531f-54c6-4a73-bf92-f60566d8d753", "texts": ["hello", "goodbye"],
    "embeddings": {"float": [[0.016296387, -0.008354187, -0.04699707], [0.0, 0.0, 0.0]]},
    "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 2}},
}  # fmt: skip


def test_chat_response() -> None:
    out = provider().parse_response(ctx(), {}, orjson.dumps(CHAT))
    assert out["object"] == "chat.completion"
    assert out["id"] == CHAT["id"]
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "LLMs stand for Large Language Models."}
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"] == {"prompt_tokens": 5, "completion_tokens": 418, "total_tokens": 423}


def test_tool_call_response() -> None:
    out = provider().parse_response(ctx(), {}, orjson.dumps(TOOL_CHAT))
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == TOOL_CHAT["message"]["tool_calls"]  # type: ignore[index]


@pytest.mark.parametrize(("reason", "finish"), [("MAX_TOKENS", "length"), ("STOP_SEQUENCE", "stop")])
def test_finish_reasons(reason: str, finish: str) -> None:
    out = provider().parse_response(ctx(), {}, orjson.dumps(dict(CHAT, finish_reason=reason)))
    assert out["choices"][0]["finish_reason"] == finish


def test_embeddings_response_float_and_base64() -> None:
    p = provider("llm/v1/embeddings", name="embed-v4.0")
    out = p.parse_response(ctx("llm/v1/embeddings"), {"encoding_format": "float"}, orjson.dumps(EMBED))
    assert out["object"] == "list"
    assert out["data"][0] == {"object": "embedding", "index": 0, "embedding": [0.016296387, -0.008354187, -0.04699707]}
    assert out["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    packed = p.parse_response(ctx("llm/v1/embeddings"), {"encoding_format": "base64"}, orjson.dumps(EMBED))
    decoded = struct.unpack("<3f", base64.b64decode(packed["data"][0]["embedding"]))
    assert decoded == pytest.approx([0.016296387, -0.008354187, -0.04699707])


@pytest.mark.parametrize("body", [b"<html>", b'{"id": "x"}', b'{"id": "x", "message": {"content": 5}}'])
def test_malformed_response_is_a_502(body: bytes) -> None:
    with pytest.raises(BadUpstreamResponse):
        provider().parse_response(ctx(), {}, body)


def test_errors() -> None:
    error = provider().parse_error(429, b'{"message": "too many"}', {"Retry-After": "3"})
    assert (error.status, error.message, error.headers) == (429, "cohere error: too many", {"Retry-After": "3"})
    assert provider().parse_error(498, b'{"message": "invalid api token"}', {}).status == 401


# --- stream --------------------------------------------------------------------------------------------------------

# Recorded streams from the /v2/chat stream reference examples.
TEXT_STREAM = b"""event: message-start
data: {"type":"message-start","id":"29f14a5a-11de-4cae-9800-25e4747408ea","delta":{"message":{"role":"assistant"}}}

event: content-start
data: {"type":"content-start","index":0,"delta":{"message":{"content":{"type":"text","text":""}}}}

event: content-delta
data: {"type":"content-delta","index":0,"delta":{"message":{"content":{"text":"LL"}}}}

event: content-delta
data: {"type":"content-delta","index":0,"delta":{"message":{"content":{"text":"Ms"}}}}

event: content-end
data: {"type":"content-end","index":0}

event: message-end
data: {"type":"message-end","delta":{"finish_reason":"COMPLETE","usage":{"billed_units":{"input_tokens":5,"output_tokens":26},"tokens":{"input_tokens":71,"output_tokens":26}}}}

"""
TOOL_STREAM = b"""event: message-start
data: {"type":"message-start","id":"2edfdf70-019c-4f7a-be20-3cdbfaa3dca6","delta":{"message":{"role":"assistant"}}}

event: tool-plan-delta
data: {"type":"tool-plan-delta","delta":{"message":{"tool_plan":"I"}}}

event: tool-call-start
data: {"type":"tool-call-start","index":0,"delta":{"message":{"tool_calls":{"id":"query_daily_sales_report_j3f0adww9pmr","type":"function","function":{"name":"query_daily_sales_report","arguments":""}}}}}

event: tool-call-delta
data: {"type":"tool-call-delta","index":0,"delta":{"message":{"tool_calls":{"function":{"arguments":"{\\""}}}}}

event: tool-call-delta
data: {"type":"tool-call-delta","index":0,"delta":{"message":{"tool_calls":{"function":{"arguments":"day\\": \\"2023-09-29\\"}"}}}}}

event: tool-call-end
data: {"type":"tool-call-end","index":0}

event: message-end
data: {"type":"message-end","delta":{"finish_reason":"TOOL_CALL","usage":{"billed_units":{"input_tokens":126,"output_tokens":84},"tokens":{"input_tokens":1589,"output_tokens":135}}}}

"""


def test_text_stream_byte_by_byte() -> None:
    chunks = feed_bytewise(provider().stream_decoder(ctx(stream=True), {}), TEXT_STREAM)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["id"] == "29f14a5a-11de-4cae-9800-25e4747408ea" for c in chunks)
    assert joined_content(chunks) == "LLMs"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"] == {"prompt_tokens": 5, "completion_tokens": 26, "total_tokens": 31}


def test_tool_stream_byte_by_byte() -> None:
    chunks = feed_bytewise(provider().stream_decoder(ctx(stream=True), {}), TOOL_STREAM)
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if c["choices"] and "tool_calls" in c["choices"][0]["delta"]]
    assert calls[0] == {"index": 0, "id": "query_daily_sales_report_j3f0adww9pmr", "type": "function",
                        "function": {"name": "query_daily_sales_report", "arguments": ""}}  # fmt: skip
    assert orjson.loads(joined_arguments(chunks)) == {"day": "2023-09-29"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_completions_stream() -> None:
    decoder = provider("llm/v1/completions").stream_decoder(ctx("llm/v1/completions", stream=True), {})
    chunks = feed_bytewise(decoder, TEXT_STREAM)
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == "LLMs"
    assert all(c["object"] == "text_completion" for c in chunks)


def test_stream_error_in_message_end() -> None:
    data = TEXT_STREAM.split(b"event: message-end")[0] + b'event: message-end\ndata: {"type":"message-end","delta":{"error":"boom"}}\n\n'
    with pytest.raises(UpstreamError) as info:
        provider().stream_decoder(ctx(stream=True), {}).feed(data)
    assert "boom" in info.value.message


def test_stream_cut_short_is_a_502() -> None:
    decoder = provider().stream_decoder(ctx(stream=True), {})
    decoder.feed(TEXT_STREAM[:300])
    with pytest.raises(BadUpstreamResponse):
        decoder.close()


@pytest.mark.parametrize("reason", ["ERROR", "TIMEOUT"])
def test_failed_generation_is_a_502_as_in_a_stream(reason: str) -> None:
    with pytest.raises(UpstreamError) as info:
        provider().parse_response(ctx(), {}, orjson.dumps(dict(CHAT, finish_reason=reason)))
    assert info.value.status == 502
    assert reason in info.value.message
