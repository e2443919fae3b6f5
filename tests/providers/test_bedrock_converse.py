"""Pure translation tests: OpenAI chat ↔ Bedrock Converse, and the ConverseStream event stream."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from botocore.eventstream import EventStreamBuffer

from modelgate_proxy.errors import BadRequest, BadUpstreamResponse, UpstreamError
from modelgate_proxy.providers.base import chunks_before
from modelgate_proxy.providers.converse import ConverseStreamDecoder, chat_from_converse, converse_request
from tests.providers.helpers import feed_bytewise, joined_arguments, joined_content
from tests.standins import aws_eventstream as es

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_system_messages_parameters_and_roles() -> None:
    body = converse_request(
        {
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "Hi"},
                {"role": "user", "content": [{"type": "text", "text": "there"}]},
                {"role": "assistant", "content": "Hello"},
                {"role": "developer", "content": "Use French."},
                {"role": "user", "content": "Bye"},
            ],
            "max_tokens": 50,
            "temperature": 0.3,
            "top_p": 0.9,
            "stop": "END",
            "top_k": 40,
            "stream": True,
            "user": "u1",
        },
        "anthropic",
    )
    assert body["system"] == [{"text": "Be terse."}, {"text": "Use French."}]
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "Hi"}, {"text": "there"}]},
        {"role": "assistant", "content": [{"text": "Hello"}]},
        {"role": "user", "content": [{"text": "Bye"}]},
    ]
    assert body["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.3, "topP": 0.9, "stopSequences": ["END"]}
    assert body["additionalModelRequestFields"] == {"top_k": 40}
    assert "stream" not in body
    assert "user" not in body


@pytest.mark.parametrize(
    ("family", "expected"),
    [("anthropic", {"top_k": 5}), ("cohere", {"k": 5}), ("amazon", {"inferenceConfig": {"topK": 5}})],
)
def test_top_k_goes_where_each_family_takes_it(family: str, expected: dict[str, Any]) -> None:
    body = converse_request({"messages": [{"role": "user", "content": "x"}], "top_k": 5}, family)
    assert body["additionalModelRequestFields"] == expected


def test_top_k_refused_for_jamba_and_unknown_parameters_refused() -> None:
    with pytest.raises(BadRequest, match="top_k"):
        converse_request({"messages": [{"role": "user", "content": "x"}], "top_k": 5}, "ai21labs")
    with pytest.raises(BadRequest, match="frobnicate"):
        converse_request({"messages": [{"role": "user", "content": "x"}], "frobnicate": 1}, "amazon")
    with pytest.raises(BadRequest, match="'n'"):
        converse_request({"messages": [{"role": "user", "content": "x"}], "n": 2}, "amazon")
    # OpenAI defaults that clients send anyway are dropped, not refused.
    body = converse_request({"messages": [{"role": "user", "content": "x"}], "n": 1, "presence_penalty": 0}, "amazon")
    assert set(body) == {"messages"}


def test_tools_tool_calls_and_results() -> None:
    body = converse_request(
        {
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "t1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
                        {"id": "t2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
                    ],
                },
                {"role": "tool", "tool_call_id": "t1", "content": "15C"},
                {"role": "tool", "tool_call_id": "t2", "content": [{"type": "text", "text": "20C"}]},
            ],
            "tools": [WEATHER_TOOL],
            "tool_choice": "required",
        },
        "cohere",
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [
            {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Paris"}}},
            {"toolUse": {"toolUseId": "t2", "name": "get_weather", "input": {"city": "Rome"}}},
        ],
    }
    assert body["messages"][2] == {
        "role": "user",
        "content": [
            {"toolResult": {"toolUseId": "t1", "content": [{"text": "15C"}], "status": "success"}},
            {"toolResult": {"toolUseId": "t2", "content": [{"text": "20C"}], "status": "success"}},
        ],
    }
    assert body["toolConfig"]["tools"][0]["toolSpec"] == {
        "name": "get_weather",
        "description": "Weather in a city",
        "inputSchema": {"json": WEATHER_TOOL["function"]["parameters"]},  # type: ignore[index]
    }
    assert body["toolConfig"]["toolChoice"] == {"any": {}}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [(None, {"auto": {}}), ("auto", {"auto": {}}),
     ({"type": "function", "function": {"name": "get_weather"}}, {"tool": {"name": "get_weather"}})],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    payload: dict[str, Any] = {"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER_TOOL]}
    if choice is not None:
        payload["tool_choice"] = choice
    assert converse_request(payload, "anthropic")["toolConfig"]["toolChoice"] == expected


def test_tool_choice_none_leaves_tools_out() -> None:
    body = converse_request(
        {"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER_TOOL], "tool_choice": "none"}, "anthropic"
    )
    assert "toolConfig" not in body


def test_images_from_data_urls_only() -> None:
    body = converse_request(
        {"messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ]}]},
        "anthropic",
    )
    assert body["messages"][0]["content"][1] == {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}
    with pytest.raises(BadRequest, match="data: URLs"):
        converse_request(
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]},
            "anthropic",
        )


def test_bad_messages_are_400() -> None:
    with pytest.raises(BadRequest):
        converse_request({"messages": []}, "amazon")
    with pytest.raises(BadRequest, match="role"):
        converse_request({"messages": [{"role": "wizard", "content": "x"}]}, "amazon")
    with pytest.raises(BadRequest, match="JSON"):
        converse_request(
            {"messages": [{"role": "user", "content": "x"},
                          {"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{"}}]}],
             "tools": [WEATHER_TOOL]},
            "amazon",
        )


def test_converse_answer_with_text_and_tool_use() -> None:
    answer = {
        "output": {"message": {"role": "assistant", "content": [
            {"text": "Let me check."},
            {"toolUse": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "get_weather", "input": {"city": "Paris"}}},
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 412, "outputTokens": 54, "totalTokens": 466},
        "metrics": {"latencyMs": 1203},
    }
    chat = chat_from_converse(answer, "anthropic.claude-3-haiku-20240307-v1:0")
    choice = chat["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    call = choice["message"]["tool_calls"][0]
    assert call["id"] == "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"
    assert orjson.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert chat["usage"] == {"prompt_tokens": 412, "completion_tokens": 54, "total_tokens": 466}
    assert chat["model"] == "anthropic.claude-3-haiku-20240307-v1:0"


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("end_turn", "stop"), ("max_tokens", "length"), ("stop_sequence", "stop"), ("guardrail_intervened", "content_filter")],
)
def test_stop_reasons(reason: str, expected: str) -> None:
    answer = {"output": {"message": {"role": "assistant", "content": [{"text": "x"}]}}, "stopReason": reason,
              "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}}
    assert chat_from_converse(answer, "m")["choices"][0]["finish_reason"] == expected


def test_malformed_answer_is_bad_upstream_response() -> None:
    with pytest.raises(BadUpstreamResponse):
        chat_from_converse({"unexpected": True}, "m")


def _tool_stream() -> bytes:
    return b"".join([
        es.event("messageStart", {"role": "assistant"}),
        es.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Let me"}}),
        es.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": " check."}}),
        es.event("contentBlockStop", {"contentBlockIndex": 0}),
        es.event("contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tu_1", "name": "get_weather"}}}),
        es.event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"city":'}}}),
        es.event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '"Paris"}'}}}),
        es.event("contentBlockStop", {"contentBlockIndex": 1}),
        es.event("messageStop", {"stopReason": "tool_use"}),
        es.event("metadata", {"usage": {"inputTokens": 412, "outputTokens": 54, "totalTokens": 466}, "metrics": {"latencyMs": 9}}),
    ])


def test_encoder_frames_parse_with_botocore() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(_tool_stream())
    messages = list(buffer)
    assert [m.headers[":event-type"] for m in messages][:2] == ["messageStart", "contentBlockDelta"]
    assert orjson.loads(messages[1].payload)["delta"] == {"text": "Let me"}


def test_stream_byte_by_byte_with_tool_call_and_usage() -> None:
    chunks = feed_bytewise(ConverseStreamDecoder("m", include_usage=True), _tool_stream())
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert joined_content(chunks) == "Let me check."
    starts = [c for c in chunks if c["choices"] and (c["choices"][0]["delta"].get("tool_calls") or [{}])[0].get("id")]
    assert starts[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert orjson.loads(joined_arguments(chunks)) == {"city": "Paris"}
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finishes == ["tool_calls"]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 412, "completion_tokens": 54, "total_tokens": 466}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)


def test_stream_without_usage_when_not_asked() -> None:
    chunks = feed_bytewise(ConverseStreamDecoder("m", include_usage=False), _tool_stream())
    assert all(c["choices"] for c in chunks)


@pytest.mark.parametrize(
    ("exception", "status"),
    [("throttlingException", 429), ("validationException", 400), ("modelStreamErrorException", 502),
     ("internalServerException", 500), ("serviceUnavailableException", 503)],
)
def test_exception_frames_raise_with_bedrock_status(exception: str, status: int) -> None:
    decoder = ConverseStreamDecoder("m", include_usage=True)
    decoder.feed(es.event("messageStart", {"role": "assistant"}))
    with pytest.raises(UpstreamError) as info:
        decoder.feed(es.exception(exception, "it broke"))
    assert info.value.status == status
    assert "it broke" in info.value.message


def test_truncated_or_corrupt_stream_is_bad_upstream_response() -> None:
    data = _tool_stream()
    decoder = ConverseStreamDecoder("m", include_usage=True)
    decoder.feed(data[:-10])
    with pytest.raises(BadUpstreamResponse):
        decoder.close()
    corrupt = bytearray(es.event("messageStart", {"role": "assistant"}))
    corrupt[-1] ^= 0xFF
    with pytest.raises(BadUpstreamResponse):
        ConverseStreamDecoder("m", include_usage=True).feed(bytes(corrupt))


# --- reasoning, failed stop reasons, cached tokens --------------------------------------------------------------
# https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ReasoningContentBlock.html,
# .../API_runtime_ReasoningContentBlockDelta.html, .../API_runtime_TokenUsage.html

REASONING = {"reasoningText": {"text": "The user wants the weather.", "signature": "ErcBCkgIBRABGAI="}}
REDACTED = {"redactedContent": "EmwKAhgBEgy3va3pzix="}


def test_reasoning_content_is_exposed_and_sent_back_first() -> None:
    answer = {"output": {"message": {"role": "assistant", "content": [
        {"reasoningContent": REASONING}, {"reasoningContent": REDACTED},
        {"toolUse": {"toolUseId": "tu_1", "name": "get_weather", "input": {"city": "Paris"}}}]}},
        "stopReason": "tool_use", "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15}}
    message = chat_from_converse(answer, "m")["choices"][0]["message"]
    assert message["reasoning_content"] == "The user wants the weather."
    assert message["thinking_blocks"] == [
        {"type": "thinking", "thinking": "The user wants the weather.", "signature": "ErcBCkgIBRABGAI="},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix="}]
    body = converse_request({"messages": [{"role": "user", "content": "Weather?"}, message,
                                          {"role": "tool", "tool_call_id": "tu_1", "content": "15"}], "tools": [WEATHER_TOOL]}, "anthropic")
    assert body["messages"][1]["content"][:2] == [{"reasoningContent": REASONING}, {"reasoningContent": REDACTED}]
    assert "toolUse" in body["messages"][1]["content"][2]


def test_stream_reasoning_deltas_and_whole_blocks() -> None:
    data = b"".join([
        es.event("messageStart", {"role": "assistant"}),
        es.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "The user "}}}),
        es.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "wants the weather."}}}),
        es.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "ErcBCkgIBRABGAI="}}}),
        es.event("contentBlockStop", {"contentBlockIndex": 0}),
        es.event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"reasoningContent": REDACTED}}),
        es.event("contentBlockStop", {"contentBlockIndex": 1}),
        es.event("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"text": "Sunny."}}),
        es.event("contentBlockStop", {"contentBlockIndex": 2}),
        es.event("messageStop", {"stopReason": "end_turn"}),
        es.event("metadata", {"usage": {"inputTokens": 5, "outputTokens": 5, "totalTokens": 10, "cacheReadInputTokens": 7}}),
    ])
    chunks = feed_bytewise(ConverseStreamDecoder("m", include_usage=True), data)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == "The user wants the weather."
    assert [b for d in deltas for b in d.get("thinking_blocks") or []] == [
        {"type": "thinking", "thinking": "The user wants the weather.", "signature": "ErcBCkgIBRABGAI="},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix="}]
    assert joined_content(chunks) == "Sunny."
    assert chunks[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 7}


@pytest.mark.parametrize("reason", ["malformed_model_output", "malformed_tool_use"])
def test_malformed_output_stop_reasons_are_a_502(reason: str) -> None:
    answer = {"output": {"message": {"role": "assistant", "content": [{"text": "x"}]}}, "stopReason": reason,
              "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}}
    with pytest.raises(UpstreamError) as info:
        chat_from_converse(answer, "m")
    assert info.value.status == 502
    assert reason in info.value.message
    data = es.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "half"}}) + es.event("messageStop", {"stopReason": reason})
    with pytest.raises(UpstreamError) as streamed:
        ConverseStreamDecoder("m", include_usage=True).feed(data)
    assert streamed.value.status == 502
    assert joined_content(chunks_before(streamed.value)) == "half"


def test_cache_reads_are_cached_tokens() -> None:
    answer = {"output": {"message": {"role": "assistant", "content": [{"text": "x"}]}}, "stopReason": "end_turn",
              "usage": {"inputTokens": 10, "outputTokens": 2, "totalTokens": 112, "cacheReadInputTokens": 90, "cacheWriteInputTokens": 10}}
    assert chat_from_converse(answer, "m")["usage"] == {"prompt_tokens": 110, "completion_tokens": 2, "total_tokens": 112,
                                                        "prompt_tokens_details": {"cached_tokens": 90}}
