"""Pure translation tests: OpenAI chat ↔ Gemini generateContent, and the streamGenerateContent SSE stream."""

from __future__ import annotations

import orjson
import pytest

from modelgate_proxy.errors import BadRequest, BadUpstreamResponse, UpstreamError
from modelgate_proxy.providers.gemini import GeminiStreamDecoder, chat_from_gemini, generate_content_request
from tests.providers.helpers import feed_bytewise, joined_arguments, joined_content

TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
    "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": False}}}


def test_roles_parameters_and_images() -> None:
    body = generate_content_request({
        "messages": [
            {"role": "system", "content": "One."},
            {"role": "developer", "content": [{"type": "text", "text": "Two."}]},
            {"role": "user", "content": [{"type": "text", "text": "Look"},
                                         {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                                         {"type": "image_url", "image_url": {"url": "gs://bucket/cat.jpg"}}]},
            {"role": "assistant", "content": "A cat."},
            {"role": "user", "content": "Thanks"},
        ],
        "max_completion_tokens": 10, "temperature": 1.8, "top_p": 0.5, "stop": ["x"], "seed": 3, "n": 1,
        "response_format": {"type": "json_object"}, "stream": True,
    })
    assert body["systemInstruction"] == {"parts": [{"text": "One."}, {"text": "Two."}]}
    assert body["contents"][0]["parts"][1:] == [{"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
                                                {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://bucket/cat.jpg"}}]
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["generationConfig"] == {"maxOutputTokens": 10, "temperature": 1.8, "topP": 0.5, "stopSequences": ["x"],
                                        "seed": 3, "candidateCount": 1, "responseMimeType": "application/json"}


def test_tools_and_tool_history() -> None:
    body = generate_content_request({
        "messages": [
            {"role": "user", "content": "Paris and Rome?"},
            {"role": "assistant", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
                {"id": "c2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}}]},
            {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 15}'},
            {"role": "tool", "tool_call_id": "c2", "content": "hot"},
        ],
        "tools": [TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    })
    assert body["contents"][1] == {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
        {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}]}
    assert body["contents"][2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_weather", "response": {"temp": 15}}},
        {"functionResponse": {"name": "get_weather", "response": {"content": "hot"}}}]}
    declaration = body["tools"][0]["functionDeclarations"][0]
    assert declaration["parameters"] == {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}


@pytest.mark.parametrize(("choice", "mode"), [("none", "NONE"), ("required", "ANY")])
def test_tool_choice_modes(choice: str, mode: str) -> None:
    body = generate_content_request({"messages": [{"role": "user", "content": "x"}], "tools": [TOOL], "tool_choice": choice})
    assert body["toolConfig"]["functionCallingConfig"]["mode"] == mode


def test_bad_requests() -> None:
    with pytest.raises(BadRequest, match="tool_call_id"):
        generate_content_request({"messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "nope", "content": "y"}]})
    with pytest.raises(BadRequest, match="logit_bias"):
        generate_content_request({"messages": [{"role": "user", "content": "x"}], "logit_bias": {"1": 2}})
    with pytest.raises(BadRequest, match="wat"):
        generate_content_request({"messages": [{"role": "user", "content": "x"}], "wat": 1})


def test_answer_with_function_call_usage_and_thoughts() -> None:
    chat = chat_from_gemini({
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "thinking...", "thought": True},
            {"text": "Checking."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 31, "candidatesTokenCount": 7, "thoughtsTokenCount": 5, "totalTokenCount": 43},
        "modelVersion": "gemini-2.0-flash-001",
    }, "gemini-2.0-flash-001")
    choice = chat["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking."
    assert orjson.loads(choice["message"]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert choice["message"]["tool_calls"][0]["id"].startswith("call_")
    assert chat["usage"] == {"prompt_tokens": 31, "completion_tokens": 12, "total_tokens": 43}


@pytest.mark.parametrize(("reason", "expected"), [("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"),
                                                  ("RECITATION", "content_filter"), ("OTHER", "stop")])
def test_finish_reasons(reason: str, expected: str) -> None:
    answer = {"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]}, "finishReason": reason}]}
    assert chat_from_gemini(answer, "m")["choices"][0]["finish_reason"] == expected


def test_blocked_prompt_and_malformed_answers() -> None:
    blocked = chat_from_gemini({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4}}, "m")
    assert blocked["choices"][0]["finish_reason"] == "content_filter"
    with pytest.raises(BadUpstreamResponse):
        chat_from_gemini({"something": "else"}, "m")
    with pytest.raises(BadUpstreamResponse):
        chat_from_gemini([1, 2], "m")


STREAM = (
    b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"The weather"}]}}],"usageMetadata":{"promptTokenCount":31,"totalTokenCount":31}}\r\n\r\n'
    b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":" in Paris"}]}}]}\r\n\r\n'
    b'data: {"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"get_weather","args":{"city":"Paris"}}}]},"finishReason":"STOP"}],'
    b'"usageMetadata":{"promptTokenCount":31,"candidatesTokenCount":9,"totalTokenCount":40}}\r\n\r\n'
)


def test_stream_byte_by_byte() -> None:
    chunks = feed_bytewise(GeminiStreamDecoder("m", include_usage=True), STREAM)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert joined_content(chunks) == "The weather in Paris"
    assert orjson.loads(joined_arguments(chunks)) == {"city": "Paris"}
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finishes == ["tool_calls"]
    assert chunks[-1] == {**chunks[-1], "choices": [], "usage": {"prompt_tokens": 31, "completion_tokens": 9, "total_tokens": 40}}


def test_stream_error_event_and_truncation() -> None:
    decoder = GeminiStreamDecoder("m", include_usage=False)
    with pytest.raises(UpstreamError) as info:
        decoder.feed(b'data: {"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}}\n\n')
    assert info.value.status == 429
    truncated = GeminiStreamDecoder("m", include_usage=False)
    truncated.feed(STREAM.split(b"\r\n\r\n")[0] + b"\r\n\r\n")
    with pytest.raises(BadUpstreamResponse):
        truncated.close()
