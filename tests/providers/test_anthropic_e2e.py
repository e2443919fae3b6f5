"""Anthropic through the real proxy, the official ``openai`` client as the caller, the stand-in as Anthropic."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from modelgate_proxy.providers.anthropic_messages import DEFAULT_MAX_TOKENS
from tests.providers import e2e
from tests.providers.e2e import ENDPOINT, Gateway, gateway
from tests.standins import anthropic_api

TOOLS: Any = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
          "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}]  # fmt: skip


def _gateway(tmp: Path, task: str, key: str = anthropic_api.API_KEY) -> Iterator[Gateway]:
    with gateway(tmp, anthropic_api.make_app(), "anthropic", anthropic_api.MODEL, task, config_field="anthropicConfig",
                 key_field="anthropicApiKey", key=key, base_field="anthropicApiBase") as gw:  # fmt: skip
        yield gw


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from _gateway(tmp_path_factory.mktemp("chat"), "llm/v1/chat")


@pytest.fixture(scope="module")
def completions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from _gateway(tmp_path_factory.mktemp("completions"), "llm/v1/completions")


def test_chat(chat: Gateway) -> None:
    answer = chat.client.chat.completions.create(
        model=ENDPOINT, messages=[{"role": "system", "content": "Be nice."}, {"role": "user", "content": "Hi"}], stop=["\n\n"], extra_body={"top_k": 5}
    )
    assert answer.choices[0].message.content == anthropic_api.REPLY
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (249, 10)
    sent = chat.requests[-1]
    assert (sent["system"], sent["max_tokens"], sent["stop_sequences"], sent["top_k"]) == ("Be nice.", DEFAULT_MAX_TOKENS, ["\n\n"], 5)


def test_chat_stream(chat: Gateway) -> None:
    chunks = e2e.stream_with_usage(chat)
    assert e2e.streamed_text(chunks) == anthropic_api.REPLY
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 259


def test_tool_round_trip(chat: Gateway) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = chat.client.chat.completions.create(model=ENDPOINT, messages=messages, tools=TOOLS, tool_choice="auto")
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call: Any = choice.message.tool_calls[0]
    assert (call.id, call.function.name, orjson.loads(call.function.arguments)) == (anthropic_api.TOOL_ID, "get_weather", {"location": "Paris"})
    messages += [choice.message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": "15°C, sunny"}]
    second = chat.client.chat.completions.create(model=ENDPOINT, messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == anthropic_api.REPLY
    assert chat.requests[-1]["messages"][-1]["content"][0] == {"type": "tool_result", "tool_use_id": anthropic_api.TOOL_ID, "content": "15°C, sunny"}


def test_tool_call_stream(chat: Gateway) -> None:
    stream: Any = chat.client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "Weather?"}], tools=TOOLS, stream=True)
    chunks = [c for c in stream if c.choices]
    calls = [t for c in chunks for t in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].id == anthropic_api.TOOL_ID
    assert calls[0].function is not None
    assert calls[0].function.name == "get_weather"
    assert orjson.loads("".join((t.function.arguments or "") for t in calls if t.function)) == {"location": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_temperature_is_passed_as_is_and_anthropic_rejects_above_one(chat: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        chat.client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "Hi"}], temperature=1.5)
    assert "temperature: range: 0..1" in str(info.value)
    answer = chat.client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "Hi"}], temperature=0.7)
    assert answer.choices[0].message.content == anthropic_api.REPLY
    assert chat.requests[-1]["temperature"] == 0.7


def test_max_tokens_reaches_anthropic(chat: Gateway) -> None:
    answer = chat.client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "Hi"}], max_tokens=2)
    assert answer.choices[0].finish_reason == "length"


def test_rate_limit_keeps_retry_after(chat: Gateway) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        chat.client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "trigger:429"}])
    assert info.value.response.headers["retry-after"] == "7"


@pytest.mark.parametrize(("trigger", "status"), [("529", 503), ("500", 500), ("malformed", 502)])
def test_provider_failures(chat: Gateway, trigger: str, status: int) -> None:
    error = e2e.chat_error(chat, f"trigger:{trigger}")
    assert error.status_code == status
    assert "Traceback" not in error.response.text


def test_error_event_mid_stream(chat: Gateway) -> None:
    stream = chat.client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "trigger:stream-error"}], stream=True)
    with pytest.raises(openai.APIError) as info:
        list(stream)
    assert "Overloaded" in str(info.value)


def test_text_before_an_error_event_in_the_same_write_reaches_the_caller(chat: Gateway, completions: Gateway) -> None:
    received: list[Any] = []
    stream = chat.client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "trigger:stream-error-burst"}], stream=True)
    with pytest.raises(openai.APIError) as info:
        e2e.drain(stream, received)
    assert "Overloaded" in str(info.value)
    assert e2e.streamed_text(received) == "Hello! "  # the stand-in's first word, sent with the error in one write
    pieces: list[Any] = []
    with pytest.raises(openai.APIError):
        e2e.drain(completions.client.completions.create(model=ENDPOINT, prompt="trigger:stream-error-burst", stream=True), pieces)
    assert e2e.completion_text(pieces) == "Hello! "


def test_embeddings_are_a_clear_400(chat: Gateway) -> None:
    with pytest.raises(openai.BadRequestError):
        chat.client.embeddings.create(model=ENDPOINT, input="hello")


def test_completions(completions: Gateway) -> None:
    answer = completions.client.completions.create(model=ENDPOINT, prompt="Say hi", max_tokens=20)
    assert answer.object == "text_completion"
    assert answer.choices[0].text == anthropic_api.REPLY
    assert completions.requests[-1]["messages"] == [{"role": "user", "content": "Say hi"}]
    stream = completions.client.completions.create(model=ENDPOINT, prompt="Say hi", stream=True)
    assert e2e.completion_text(stream) == anthropic_api.REPLY


def test_wrong_key_is_refused_by_the_stand_in(tmp_path: Path) -> None:
    for gw in _gateway(tmp_path, "llm/v1/chat", key="sk-ant-wrong"):
        error = e2e.chat_error(gw)
        assert error.status_code == 401
        assert "invalid x-api-key" in str(error)
        assert "sk-ant-wrong" not in error.response.text
