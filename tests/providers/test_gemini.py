"""Pure translation tests: OpenAI chat ↔ Gemini generateContent, and the streamGenerateContent SSE stream."""

from __future__ import annotations

import orjson
import pytest

from modelgate_proxy.errors import BadRequest, BadUpstreamResponse, UpstreamError
from modelgate_proxy.providers.gemini import (
    SKIP_SIGNATURE,
    GeminiStreamDecoder,
    chat_from_gemini,
    generate_content_request,
)
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
        # no signature in the history: the documented placeholder goes on the step's first call only
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": SKIP_SIGNATURE},
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


# --- thought signatures (https://docs.cloud.google.com/vertex-ai/generative-ai/docs/thought-signatures) ----------

SIGNED_ANSWER = {"candidates": [{"content": {"role": "model", "parts": [
    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "CiQBz1rX0ilu+mvP/g6k0sM="},
    {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}]}, "finishReason": "STOP", "index": 0}]}


def test_thought_signature_travels_in_the_tool_call_id_and_comes_back() -> None:
    message = chat_from_gemini(SIGNED_ANSWER, "gemini-3-pro-preview")["choices"][0]["message"]
    first, second = message["tool_calls"]
    assert first["id"].startswith("call_")
    assert first["id"].endswith("__thought__CiQBz1rX0ilu+mvP/g6k0sM=")
    assert "__thought__" not in second["id"]
    body = generate_content_request({"messages": [
        {"role": "user", "content": "Paris and Rome?"}, message,
        {"role": "tool", "tool_call_id": first["id"], "content": "15"}, {"role": "tool", "tool_call_id": second["id"], "content": "20"},
    ], "tools": [TOOL]})
    assert body["contents"][1]["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "CiQBz1rX0ilu+mvP/g6k0sM="},
        {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}]  # only the first of parallel calls is signed
    assert [p["functionResponse"]["name"] for p in body["contents"][2]["parts"]] == ["get_weather", "get_weather"]


def test_every_unsigned_step_gets_the_placeholder_on_its_first_call() -> None:
    call = {"type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    body = generate_content_request({"messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{**call, "id": "a"}]}, {"role": "tool", "tool_call_id": "a", "content": "1"},
        {"role": "assistant", "content": "more", "tool_calls": [{**call, "id": "b"}, {**call, "id": "c"}]},
        {"role": "tool", "tool_call_id": "b", "content": "2"}, {"role": "tool", "tool_call_id": "c", "content": "3"},
        {"role": "assistant", "content": "done"},
    ], "tools": [TOOL]})
    signatures = [[p.get("thoughtSignature") for p in c["parts"]] for c in body["contents"] if c["role"] == "model"]
    assert signatures == [[SKIP_SIGNATURE], [None, SKIP_SIGNATURE, None], [None]]


def test_stream_tool_call_id_carries_the_signature() -> None:
    event = b"data: " + orjson.dumps(SIGNED_ANSWER) + b"\r\n\r\n"
    chunks = feed_bytewise(GeminiStreamDecoder("m", include_usage=False), event)
    calls = [t for c in chunks for t in c["choices"][0]["delta"].get("tool_calls") or []]
    assert [t["index"] for t in calls] == [0, 1]
    assert calls[0]["id"].endswith("__thought__CiQBz1rX0ilu+mvP/g6k0sM=")


# --- n > 1 streamed, cached tokens ------------------------------------------------------------------------------

MULTI_STREAM = b"".join(b"data: " + orjson.dumps(e) + b"\r\n\r\n" for e in [
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "One"}]}, "index": 0},
                    {"content": {"role": "model", "parts": [{"text": "Two"}]}, "index": 1}]},
    {"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]}, "index": 1,
                     "finishReason": "STOP"}]},
    {"candidates": [{"content": {"role": "model", "parts": [{"text": " more"}]}, "index": 0, "finishReason": "MAX_TOKENS"}],
     "usageMetadata": {"promptTokenCount": 40, "cachedContentTokenCount": 32, "candidatesTokenCount": 6, "totalTokenCount": 46}},
])  # fmt: skip


def test_stream_sends_every_candidate_under_its_index() -> None:
    chunks = feed_bytewise(GeminiStreamDecoder("m", include_usage=True), MULTI_STREAM)
    by_index: dict[int, list[dict[str, object]]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            by_index.setdefault(choice["index"], []).append(choice)
    assert sorted(by_index) == [0, 1]
    for choices in by_index.values():
        assert choices[0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["delta"].get("content") or "" for c in by_index[0]) == "One more"  # type: ignore[union-attr]
    assert "".join(c["delta"].get("content") or "" for c in by_index[1]) == "Two"  # type: ignore[union-attr]
    assert [c["finish_reason"] for c in by_index[0] if c["finish_reason"]] == ["length"]
    assert [c["finish_reason"] for c in by_index[1] if c["finish_reason"]] == ["tool_calls"]
    assert chunks[-1]["usage"] == {"prompt_tokens": 40, "completion_tokens": 6, "total_tokens": 46,
                                   "prompt_tokens_details": {"cached_tokens": 32}}


def test_stream_ends_with_a_candidate_unfinished_is_a_502() -> None:
    decoder = GeminiStreamDecoder("m", include_usage=False)
    decoder.feed(MULTI_STREAM.split(b"\r\n\r\n")[0] + b"\r\n\r\n" + MULTI_STREAM.split(b"\r\n\r\n")[1] + b"\r\n\r\n")
    with pytest.raises(BadUpstreamResponse):
        decoder.close()


def test_cached_content_tokens_in_a_whole_answer() -> None:
    answer = {"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}]}, "finishReason": "STOP"}],
              "usageMetadata": {"promptTokenCount": 100, "cachedContentTokenCount": 80, "candidatesTokenCount": 1}}
    assert chat_from_gemini(answer, "m")["usage"]["prompt_tokens_details"] == {"cached_tokens": 80}
