"""An error event in a stream, read in the same network read as good events before it: every decoder hands the
chunks of those events over with the error (``chunks_before``), so the caller gets them ahead of the error."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelgate_proxy.errors import BadUpstreamResponse, GatewayError, UpstreamError
from modelgate_proxy.providers.ai21labs_chat import AI21StreamDecoder
from modelgate_proxy.providers.anthropic_stream import AnthropicStreamDecoder
from modelgate_proxy.providers.base import StreamDecoder, chunks_before, decode_each
from modelgate_proxy.providers.cohere_stream import CohereStreamDecoder
from modelgate_proxy.providers.completions_via_chat import CompletionsStreamDecoder
from modelgate_proxy.providers.converse import ConverseStreamDecoder
from modelgate_proxy.providers.gemini import GeminiStreamDecoder
from modelgate_proxy.providers.openai_wire import OpenAIStreamDecoder
from modelgate_proxy.stages.invoke import _GuardedDecoder
from tests.providers.helpers import joined_content
from tests.standins import aws_eventstream as es


def _sse(*events: Any, typed: bool = False) -> bytes:
    out = b""
    for event in events:
        if typed:
            out += b"event: " + str(event["type"]).encode() + b"\n"
        out += b"data: " + orjson.dumps(event) + b"\n\n"
    return out


def _openai_chunk(delta: dict[str, Any]) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


OPENAI = _sse(_openai_chunk({"role": "assistant", "content": ""}), _openai_chunk({"content": "Hello "}),
              _openai_chunk({"content": "there"}), {"error": {"message": "The model is overloaded.", "type": "server_error"}})

ANTHROPIC = _sse(
    {"type": "message_start", "message": {"id": "msg_1", "model": "claude", "usage": {"input_tokens": 3, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello "}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "there"}},
    {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    typed=True,
)

COHERE = _sse(
    {"type": "message-start", "id": "c1", "delta": {"message": {"role": "assistant"}}},
    {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hello "}}}},
    {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "there"}}}},
    {"type": "message-end", "delta": {"error": "internal error during generation"}},
    typed=True,
)

GEMINI = _sse(
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hello "}]}}]},
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "there"}]}}]},
    {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}},
)

CONVERSE = (
    es.event("messageStart", {"role": "assistant"})
    + es.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hello "}})
    + es.event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "there"}})
    + es.exception("modelStreamErrorException", "The model stream failed.")
)

AI21 = _sse(
    {"id": "a1", "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]},
    {"id": "a1", "choices": [{"index": 0, "delta": {"content": "Hello "}, "finish_reason": None}]},
    {"id": "a1", "choices": [{"index": 0, "delta": {"content": "there"}, "finish_reason": None}]},
    {"id": "a1", "choices": "not a list of choices"},
)

DECODERS: list[tuple[str, Any, bytes, type[GatewayError], int]] = [
    ("openai", lambda: OpenAIStreamDecoder("openai"), OPENAI, UpstreamError, 502),
    ("anthropic", lambda: AnthropicStreamDecoder("claude", include_usage=True), ANTHROPIC, UpstreamError, 503),
    ("cohere", lambda: CohereStreamDecoder("command", include_usage=True), COHERE, UpstreamError, 502),
    ("gemini", lambda: GeminiStreamDecoder("gemini", include_usage=True), GEMINI, UpstreamError, 503),
    ("converse", lambda: ConverseStreamDecoder("claude", include_usage=True), CONVERSE, UpstreamError, 502),
    ("ai21labs", lambda: AI21StreamDecoder("jamba", include_usage=True), AI21, BadUpstreamResponse, 502),
]


@pytest.mark.parametrize(("make", "data", "error", "status"), [d[1:] for d in DECODERS], ids=[d[0] for d in DECODERS])
def test_chunks_before_an_error_in_the_same_read_travel_with_it(
    make: Any, data: bytes, error: type[GatewayError], status: int
) -> None:
    decoder: StreamDecoder = make()
    with pytest.raises(error) as info:
        decoder.feed(data)
    assert info.value.status == status
    assert joined_content(chunks_before(info.value)) == "Hello there"


@pytest.mark.parametrize(("make", "data"), [(d[1], d[2]) for d in DECODERS], ids=[d[0] for d in DECODERS])
def test_completions_streams_convert_the_chunks_before_the_error(make: Any, data: bytes) -> None:
    decoder = CompletionsStreamDecoder(make())
    with pytest.raises(GatewayError) as info:
        decoder.feed(data)
    chunks = chunks_before(info.value)
    assert all(c["object"] == "text_completion" for c in chunks)
    assert "".join(c["choices"][0]["text"] for c in chunks) == "Hello there"


def test_the_guard_of_unexpected_failures_keeps_the_chunks() -> None:
    class Named:
        name = "anthropic"

    decoder = _GuardedDecoder(Named(), AnthropicStreamDecoder("claude", include_usage=True))  # type: ignore[arg-type]
    with pytest.raises(UpstreamError) as info:
        decoder.feed(ANTHROPIC)
    assert joined_content(chunks_before(info.value)) == "Hello there"


def test_an_error_in_a_later_read_carries_only_that_reads_chunks() -> None:
    decoder = AnthropicStreamDecoder("claude", include_usage=True)
    head, tail = ANTHROPIC.split(b"event: content_block_delta", 1)
    assert joined_content(decoder.feed(head)) == ""
    with pytest.raises(UpstreamError) as info:
        decoder.feed(b"event: content_block_delta" + tail)
    assert joined_content(chunks_before(info.value)) == "Hello there"


def test_decode_each_nests_and_leaves_other_errors_alone() -> None:
    def inner(n: int) -> list[dict[str, Any]]:
        if n == 3:
            raise UpstreamError("boom", status=502)
        return [{"n": n}]

    with pytest.raises(UpstreamError) as info:
        decode_each([[1, 2], [3]], lambda batch: decode_each(batch, inner))
    assert chunks_before(info.value) == [{"n": 1}, {"n": 2}]
    assert chunks_before(ValueError()) == []
    with pytest.raises(KeyError):
        decode_each([1], lambda n: {}["x"])


@pytest.mark.parametrize(("make", "data"), [
    (lambda: AnthropicStreamDecoder("claude", include_usage=True), ANTHROPIC.rsplit(b"event: error", 1)[0]),
    (lambda: CohereStreamDecoder("command", include_usage=True), COHERE.rsplit(b"event: message-end", 1)[0]),
    (lambda: GeminiStreamDecoder("gemini", include_usage=True), GEMINI.rsplit(b"data: {\"error\"", 1)[0]),
    (lambda: AI21StreamDecoder("jamba", include_usage=True), AI21.rsplit(b"data: ", 1)[0]),
], ids=["anthropic", "cohere", "gemini", "ai21labs"])  # fmt: skip
def test_a_stream_cut_short_keeps_what_its_last_bytes_held(make: Any, data: bytes) -> None:
    decoder: StreamDecoder = make()
    decoder.feed(data.rstrip(b"\n"))  # the last event is only complete once the body ends
    with pytest.raises(BadUpstreamResponse) as info:
        decoder.close()
    assert joined_content(chunks_before(info.value)) == "there"
