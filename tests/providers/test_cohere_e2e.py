"""Cohere v2 through the real proxy, the official ``openai`` client as the caller, the stand-in as Cohere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from tests.providers import e2e
from tests.providers.e2e import ENDPOINT, Gateway, gateway
from tests.standins import cohere_api

TOOLS: Any = [{"type": "function", "function": {"name": "query_daily_sales_report", "description": "Sales of a day",
          "parameters": {"type": "object", "properties": {"day": {"type": "string"}}, "required": ["day"]}}}]  # fmt: skip


def _gateway(tmp: Path, task: str, model: str = "command-a-03-2025", key: str = cohere_api.API_KEY) -> Iterator[Gateway]:
    with gateway(tmp, cohere_api.make_app(), "cohere", model, task, config_field="cohereConfig",
                 key_field="cohereApiKey", key=key, base_field="cohereApiBase") as gw:  # fmt: skip
        yield gw


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from _gateway(tmp_path_factory.mktemp("chat"), "llm/v1/chat")


def test_chat_with_renamed_parameters(chat: Gateway) -> None:
    answer = chat.client.chat.completions.create(
        model=ENDPOINT, messages=[{"role": "system", "content": "Short."}, {"role": "user", "content": "What are LLMs?"}],
        top_p=0.5, stop="END", seed=1, frequency_penalty=0.1, max_tokens=30, extra_body={"top_k": 20, "safety_mode": "OFF"},
    )  # fmt: skip
    assert answer.choices[0].message.content == cohere_api.REPLY
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (5, 9)
    sent = chat.requests[-1]
    assert (sent["p"], sent["k"], sent["stop_sequences"], sent["seed"], sent["max_tokens"]) == (0.5, 20, ["END"], 1, 30)
    assert sent["safety_mode"] == "OFF"


def test_chat_stream(chat: Gateway) -> None:
    chunks = e2e.stream_with_usage(chat)
    assert e2e.streamed_text(chunks) == cohere_api.REPLY
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 9


def test_tool_round_trip_and_stream(chat: Gateway) -> None:
    messages: list[Any] = [{"role": "user", "content": "Sales on 2023-09-29?"}]
    first = chat.client.chat.completions.create(model=ENDPOINT, messages=messages, tools=TOOLS, tool_choice="required")
    assert first.choices[0].finish_reason == "tool_calls"
    assert chat.requests[-1]["tool_choice"] == "REQUIRED"
    call: Any = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert orjson.loads(call.function.arguments) == {"day": "2023-09-29"}
    messages += [first.choices[0].message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": '{"total": 3}'}]
    second = chat.client.chat.completions.create(model=ENDPOINT, messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == cohere_api.REPLY
    stream = chat.client.chat.completions.create(model=ENDPOINT, messages=messages[:1], tools=TOOLS, stream=True)
    calls = e2e.streamed_tool_calls(stream)
    assert calls[0].id == cohere_api.TOOL_CALL_ID
    assert orjson.loads("".join(t.function.arguments or "" for t in calls if t.function)) == {"day": "2023-09-29"}


def test_out_of_range_top_p_is_rejected_by_cohere(chat: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        chat.client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "Hi"}], top_p=1.0)
    assert "p must be between" in str(info.value)


@pytest.mark.parametrize(("trigger", "status"), [("429", 429), ("500", 500), ("malformed", 502)])
def test_provider_failures(chat: Gateway, trigger: str, status: int) -> None:
    error = e2e.chat_error(chat, f"trigger:{trigger}")
    assert error.status_code == status
    if status == 429:
        assert error.response.headers["retry-after"] == "3"


def test_error_at_message_end(chat: Gateway) -> None:
    stream = chat.client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "trigger:stream-error"}], stream=True)
    with pytest.raises(openai.APIError):
        list(stream)


def test_failed_generation_is_a_502_whole_or_streamed(chat: Gateway) -> None:
    error = e2e.chat_error(chat, "trigger:finish-error")
    assert error.status_code == 502
    assert "generation ended with ERROR" in str(error)
    received: list[Any] = []
    stream = chat.client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "trigger:stream-error-burst"}], stream=True)
    with pytest.raises(openai.APIError, match="internal error during generation"):
        e2e.drain(stream, received)
    assert e2e.streamed_text(received) == cohere_api.REPLY  # sent in the same write as the error


def test_completions_through_chat(tmp_path: Path) -> None:
    for gw in _gateway(tmp_path, "llm/v1/completions"):
        answer = gw.client.completions.create(model=ENDPOINT, prompt="What are LLMs?")
        assert answer.choices[0].text == cohere_api.REPLY
        assert gw.requests[-1]["messages"] == [{"role": "user", "content": "What are LLMs?"}]


def test_embeddings_float_and_default_base64(tmp_path: Path) -> None:
    for gw in _gateway(tmp_path, "llm/v1/embeddings", model="embed-v4.0"):
        answer = gw.client.embeddings.create(model=ENDPOINT, input=["hello", "goodbye"])  # the client asks for base64
        assert [d.embedding for d in answer.data] == [pytest.approx(cohere_api.vector(t)) for t in ("hello", "goodbye")]
        assert gw.requests[-1]["input_type"] == "search_document"
        answer = gw.client.embeddings.create(model=ENDPOINT, input="hi", encoding_format="float", extra_body={"input_type": "search_query"})
        assert answer.data[0].embedding == pytest.approx(cohere_api.vector("hi"))
        assert gw.requests[-1]["input_type"] == "search_query"


def test_wrong_key_is_refused_by_the_stand_in(tmp_path: Path) -> None:
    for gw in _gateway(tmp_path, "llm/v1/chat", key="co-wrong"):
        error = e2e.chat_error(gw)
        assert error.status_code == 401
        assert "invalid api token" in str(error)
