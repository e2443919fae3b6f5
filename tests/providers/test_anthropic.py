"""Anthropic translation, request and response, against recorded examples from Anthropic's docs and SDK."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelgate_proxy.errors import BadRequest, BadUpstreamResponse, UnsupportedTask, UpstreamError
from modelgate_proxy.providers.anthropic import AnthropicProvider
from modelgate_proxy.providers.anthropic_messages import DEFAULT_MAX_TOKENS
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

KEY = "sk-ant-unit-test"


def provider(task: str = "llm/v1/chat", base: str | None = None) -> AnthropicProvider:
    config = {"anthropicApiKeyPlaintext": KEY} | ({"anthropicApiBase": base} if base else {})
    return AnthropicProvider(external_model("anthropic", "claude-sonnet-4-5", task, config), PlainCredentials(), NoHttp())  # type: ignore[arg-type]


# --- request -------------------------------------------------------------------------------------------------------


def test_request_url_headers_and_default_max_tokens() -> None:
    request, body = build(provider(), ctx(), {"messages": [{"role": "user", "content": "Hi"}]})
    assert request.url == "https://api.anthropic.com/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert body == {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": DEFAULT_MAX_TOKENS}


def test_base_url_override() -> None:
    request, _ = build(provider(base="https://anthropic.internal/"), ctx(), {"messages": [{"role": "user", "content": "x"}]})
    assert request.url == "https://anthropic.internal/v1/messages"


def test_system_messages_are_lifted_and_parameters_renamed() -> None:
    payload = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Hello"},
        ],
        "max_completion_tokens": 100,
        "stop": "END",
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 40,
        "user": "u-1",
        "thinking": {"type": "disabled"},
        "n": 1,
        "presence_penalty": 0,
    }
    _, body = build(provider(), ctx(), payload)
    assert body["system"] == [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Answer in French."}]
    assert body["messages"] == [{"role": "user", "content": "Hello"}]
    assert body["max_tokens"] == 100
    assert body["stop_sequences"] == ["END"]
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.5, 0.9, 40)
    assert body["metadata"] == {"user_id": "u-1"}
    assert body["thinking"] == {"type": "disabled"}  # unknown to OpenAI: passed through as-is
    assert "n" not in body
    assert "presence_penalty" not in body


def test_temperature_is_passed_as_is_not_rescaled() -> None:
    _, body = build(provider(), ctx(), {"messages": [{"role": "user", "content": "x"}], "temperature": 1.5})
    assert body["temperature"] == 1.5


@pytest.mark.parametrize(("param", "value"), [("n", 2), ("seed", 7), ("frequency_penalty", 0.5), ("logprobs", True)])
def test_unsupported_openai_parameters_are_refused(param: str, value: object) -> None:
    with pytest.raises(BadRequest) as info:
        build(provider(), ctx(), {"messages": [{"role": "user", "content": "x"}], param: value})
    assert info.value.param == param


def test_images_data_url_and_http_url() -> None:
    parts = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}},
    ]
    _, body = build(provider(), ctx(), {"messages": [{"role": "user", "content": parts}]})
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


def test_bad_image_url_is_a_400() -> None:
    parts = [{"type": "image_url", "image_url": {"url": "ftp://example.com/cat.jpg"}}]
    with pytest.raises(BadRequest):
        build(provider(), ctx(), {"messages": [{"role": "user", "content": parts}]})


def test_tools_tool_choice_and_tool_history() -> None:
    tools: Any = [{"type": "function", "function": {"name": "get_weather", "description": "Weather now", "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}]
    payload = {
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'}},
                {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"location": "Rome"}'}},
            ]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "15°C, sunny"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "20°C"}]},
        ],
        "tools": tools,
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
    }  # fmt: skip
    _, body = build(provider(), ctx(), payload)
    assert body["tools"] == [{"name": "get_weather", "description": "Weather now", "input_schema": tools[0]["function"]["parameters"]}]
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}
    assert body["messages"][1] == {"role": "assistant", "content": [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"location": "Rome"}},
    ]}  # fmt: skip
    assert body["messages"][2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "15°C, sunny"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "20°C"},
    ]}  # fmt: skip


@pytest.mark.parametrize(("choice", "expected"), [("auto", {"type": "auto"}), ("required", {"type": "any"}), ("none", {"type": "none"})])
def test_tool_choice_strings(choice: str, expected: dict[str, str]) -> None:
    _, body = build(provider(), ctx(), {"messages": [{"role": "user", "content": "x"}], "tool_choice": choice})
    assert body["tool_choice"] == expected


def test_completions_become_one_user_message() -> None:
    _, body = build(provider("llm/v1/completions"), ctx("llm/v1/completions"), {"prompt": ["Say this is a test"], "max_tokens": 7})
    assert body["messages"] == [{"role": "user", "content": "Say this is a test"}]
    assert body["max_tokens"] == 7


def test_embeddings_are_refused() -> None:
    with pytest.raises(UnsupportedTask):
        build(provider(), ctx("llm/v1/embeddings"), {"input": "x"})


# --- response ------------------------------------------------------------------------------------------------------

# Recorded response (anthropic-sdk-python test snapshot, quoted in Anthropic's Messages API docs' shape).
MESSAGE = {
    "model": "claude-sonnet-4-5-20250929", "id": "msg_01MkoP42QB7TUf5m2NVVK2kE", "type": "message", "role": "assistant",
    "content": [{"type": "text", "text": '{"product_name": "Green Tea", "price": 5.50, "quantity": 2}'}],
    "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 249, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
              "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
              "output_tokens": 26, "service_tier": "standard"},
}  # fmt: skip


def test_response_text() -> None:
    out = provider().parse_response(ctx(), {}, orjson.dumps(MESSAGE))
    assert out["object"] == "chat.completion"
    assert out["id"] == "msg_01MkoP42QB7TUf5m2NVVK2kE"
    assert out["model"] == "claude-sonnet-4-5-20250929"
    assert out["choices"][0]["message"] == {"role": "assistant", "content": MESSAGE["content"][0]["text"]}  # type: ignore[index]
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"] == {"prompt_tokens": 249, "completion_tokens": 26, "total_tokens": 275}


def test_response_tool_use_and_cached_usage() -> None:
    message = dict(MESSAGE, stop_reason="tool_use", content=[
        {"type": "text", "text": "I'll check the current weather in Paris for you."},
        {"type": "tool_use", "id": "toolu_01NRLabsLyVHZPKxbKvkfSMn", "name": "get_weather", "input": {"location": "Paris"}},
    ], usage={"input_tokens": 10, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 100, "output_tokens": 3})  # fmt: skip
    out = provider().parse_response(ctx(), {}, orjson.dumps(message))
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"] == [
        {"id": "toolu_01NRLabsLyVHZPKxbKvkfSMn", "type": "function", "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'}}
    ]
    assert out["usage"] == {"prompt_tokens": 115, "completion_tokens": 3, "total_tokens": 118, "prompt_tokens_details": {"cached_tokens": 100}}


@pytest.mark.parametrize(("stop", "finish"), [("max_tokens", "length"), ("stop_sequence", "stop"), ("refusal", "content_filter")])
def test_stop_reasons(stop: str, finish: str) -> None:
    out = provider().parse_response(ctx(), {}, orjson.dumps(dict(MESSAGE, stop_reason=stop)))
    assert out["choices"][0]["finish_reason"] == finish


def test_completions_response_shape() -> None:
    out = provider("llm/v1/completions").parse_response(ctx("llm/v1/completions"), {}, orjson.dumps(MESSAGE))
    assert out["object"] == "text_completion"
    assert out["choices"][0]["text"] == MESSAGE["content"][0]["text"]  # type: ignore[index]


@pytest.mark.parametrize("body", [b"not json", b'{"id": "msg"}', b"[1, 2]"])
def test_malformed_response_is_a_502(body: bytes) -> None:
    with pytest.raises(BadUpstreamResponse) as info:
        provider().parse_response(ctx(), {}, body)
    assert info.value.status == 502


def test_errors() -> None:
    body = b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'
    error = provider().parse_error(429, body, {"retry-after": "7", "x-other": "1"})
    assert (error.status, error.headers, error.message) == (429, {"retry-after": "7"}, "anthropic error: slow down")
    overloaded = provider().parse_error(529, b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', {})
    assert overloaded.status == 503
    assert "Overloaded" in overloaded.message


# --- stream --------------------------------------------------------------------------------------------------------

# Recorded stream: anthropic-sdk-python tests/lib/streaming/fixtures/tool_use_response.txt.
TOOL_STREAM = b"""event: message_start
data: {"type":"message_start","message":{"id":"msg_019Q1hrJbZG26Fb9BQhrkHEr","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":377,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1,"service_tier":"standard"}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"I"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"'ll check the current weather in Paris for you."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01NRLabsLyVHZPKxbKvkfSMn","name":"get_weather","caller":{"type":"direct"},"input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"locati"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"on\\": \\"P"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ar"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"is\\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":65}}

event: message_stop
data: {"type":"message_stop"}

"""


def test_stream_with_tool_use_byte_by_byte() -> None:
    chunks = feed_bytewise(provider().stream_decoder(ctx(stream=True), {}), TOOL_STREAM)
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "msg_019Q1hrJbZG26Fb9BQhrkHEr" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert joined_content(chunks) == "I'll check the current weather in Paris for you."
    first_call = next(c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("tool_calls"))
    assert first_call["choices"][0]["delta"]["tool_calls"] == [
        {"index": 0, "id": "toolu_01NRLabsLyVHZPKxbKvkfSMn", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    ]
    assert orjson.loads(joined_arguments(chunks)) == {"location": "Paris"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 377, "completion_tokens": 65, "total_tokens": 442}


def test_stream_without_usage_chunk() -> None:
    chunks = feed_bytewise(provider().stream_decoder(ctx(stream=True, include_usage=False), {}), TOOL_STREAM)
    assert all(c["choices"] for c in chunks)
    assert "usage" not in chunks[-1]


def test_stream_for_completions() -> None:
    chunks = feed_bytewise(provider("llm/v1/completions").stream_decoder(ctx("llm/v1/completions", stream=True), {}), TOOL_STREAM)
    assert all(c["object"] == "text_completion" for c in chunks)
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == "I'll check the current weather in Paris for you."
    assert chunks[-1]["usage"]["completion_tokens"] == 65


def test_stream_error_event_raises_upstream_error() -> None:
    data = TOOL_STREAM.split(b"event: content_block_stop")[0]
    data += b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    decoder = provider().stream_decoder(ctx(stream=True), {})
    with pytest.raises(UpstreamError) as info:
        decoder.feed(data)
    assert (info.value.status, info.value.message) == (503, "anthropic error: Overloaded")


def test_stream_cut_short_is_a_502() -> None:
    decoder = provider().stream_decoder(ctx(stream=True), {})
    decoder.feed(TOOL_STREAM[:800])
    with pytest.raises(BadUpstreamResponse):
        decoder.close()


def test_stream_event_not_json_is_a_502() -> None:
    decoder = provider().stream_decoder(ctx(stream=True), {})
    with pytest.raises(BadUpstreamResponse):
        decoder.feed(b"event: message_start\ndata: {oops\n\n")


def test_stream_options_are_not_forwarded() -> None:
    payload = {"messages": [{"role": "user", "content": "x"}], "stream": True, "stream_options": {"include_usage": True}}
    _, body = build(provider(), ctx(stream=True), payload)
    assert "stream_options" not in body
    assert body["stream"] is True


# --- extended thinking ------------------------------------------------------------------------------------------
# Shapes from https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking (response, streaming,
# redacted thinking, preserving thinking blocks during tool use).

THINKING_BLOCK = {"type": "thinking", "thinking": "Let me analyze this step by step...", "signature": "WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve/op91XWHOEBLLqIOMfFG/UvLEczmEsUjavL...."}
REDACTED_BLOCK = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB5URj"}


def test_thinking_blocks_are_exposed_and_sent_back_first() -> None:
    message = dict(MESSAGE, stop_reason="tool_use", content=[
        THINKING_BLOCK, REDACTED_BLOCK,
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}}])
    answer = provider().parse_response(ctx(), {}, orjson.dumps(message))["choices"][0]["message"]
    assert answer["reasoning_content"] == THINKING_BLOCK["thinking"]
    assert answer["thinking_blocks"] == [THINKING_BLOCK, REDACTED_BLOCK]
    payload = {"thinking": {"type": "enabled", "budget_tokens": 2048}, "max_tokens": 4096, "messages": [
        {"role": "user", "content": "Weather?"}, answer, {"role": "tool", "tool_call_id": "toolu_1", "content": "15C"}]}
    _, body = build(provider(), ctx(), payload)
    assert body["messages"][1] == {"role": "assistant", "content": [
        THINKING_BLOCK, REDACTED_BLOCK, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}}]}
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}


@pytest.mark.parametrize("blocks", [{"type": "thinking"}, [{"type": "thinking", "thinking": "x"}], [{"type": "other"}]])
def test_malformed_thinking_blocks_are_a_400(blocks: object) -> None:
    payload = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "thinking_blocks": blocks},
                            {"role": "user", "content": "c"}]}
    with pytest.raises(BadRequest, match="thinking_blocks"):
        build(provider(), ctx(), payload)


THINKING_STREAM = b"".join(
    b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in [  # type: ignore[attr-defined]
        {"type": "message_start", "message": {"id": "msg_01", "model": "claude-sonnet-4-5", "usage": {"input_tokens": 10, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me analyze "}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "this step by step..."}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": THINKING_BLOCK["signature"]}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": REDACTED_BLOCK},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "27 * 453 = 12,231"}},
        {"type": "content_block_stop", "index": 2},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 20}},
        {"type": "message_stop"},
    ]
)


def test_stream_thinking_deltas_and_whole_signed_blocks() -> None:
    chunks = feed_bytewise(provider().stream_decoder(ctx(stream=True), {}), THINKING_STREAM)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == THINKING_BLOCK["thinking"]
    assert [b for d in deltas for b in d.get("thinking_blocks") or []] == [THINKING_BLOCK, REDACTED_BLOCK]
    assert joined_content(chunks) == "27 * 453 = 12,231"
    completions = feed_bytewise(provider("llm/v1/completions").stream_decoder(ctx("llm/v1/completions", stream=True), {}), THINKING_STREAM)
    assert "".join(c["choices"][0]["text"] for c in completions if c["choices"]) == "27 * 453 = 12,231"


# --- empty content, metadata, service_tier, max_tokens ----------------------------------------------------------


def test_empty_system_texts_and_assistant_turns_are_left_out() -> None:
    _, body = build(provider(), ctx(), {"messages": [
        {"role": "system", "content": ""}, {"role": "developer", "content": [{"type": "text", "text": ""}]},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": ""}]},
        {"role": "assistant", "content": ""}, {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "user", "content": "Again"},
        {"role": "assistant", "content": [{"type": "text", "text": ""}]},
    ]})
    assert "system" not in body
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "Again"}]}]


@pytest.mark.parametrize("content", ["", [], [{"type": "text", "text": ""}]])
def test_empty_user_message_is_a_400_naming_it(content: object) -> None:
    with pytest.raises(BadRequest, match=r"messages\[2\] is a user message with empty content"):
        build(provider(), ctx(), {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                                               {"role": "user", "content": content}]})


@pytest.mark.parametrize(("metadata", "user", "expected"), [
    ({"user_id": "m-1", "team": "search"}, "u-1", {"user_id": "m-1"}),
    ({"team": "search"}, "u-1", {"user_id": "u-1"}),
    ({"team": "search"}, None, None),
    (None, None, None),
])  # fmt: skip
def test_metadata_is_only_user_id(metadata: object, user: object, expected: object) -> None:
    _, body = build(provider(), ctx(), {"messages": [{"role": "user", "content": "x"}], "metadata": metadata, "user": user})
    assert body.get("metadata") == expected


@pytest.mark.parametrize(("tier", "expected"), [
    ("auto", "auto"), ("priority", "auto"), ("default", "standard_only"), ("standard_only", "standard_only"),
    ("flex", None), ("scale", None), (None, None),
])  # fmt: skip
def test_service_tier_is_mapped_or_dropped(tier: object, expected: object) -> None:
    _, body = build(provider(), ctx(), {"messages": [{"role": "user", "content": "x"}], "service_tier": tier})
    assert body.get("service_tier") == expected


@pytest.mark.parametrize(("params", "expected"), [
    ({"max_tokens": 0}, 0), ({"max_completion_tokens": 0}, 0), ({"max_tokens": None}, DEFAULT_MAX_TOKENS),
    ({"max_completion_tokens": 100, "max_tokens": None}, 100), ({"max_completion_tokens": 100, "max_tokens": 50}, 50),
])  # fmt: skip
def test_max_tokens_default_only_when_absent(params: dict[str, object], expected: int) -> None:
    _, body = build(provider(), ctx(), {"messages": [{"role": "user", "content": "x"}], **params})
    assert body["max_tokens"] == expected
