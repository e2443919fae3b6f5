"""AI21 Jamba through the real proxy, the official ``openai`` client as the caller, the stand-in as AI21."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from tests.providers import e2e
from tests.providers.e2e import ENDPOINT, Gateway, gateway
from tests.standins import ai21_api

TOOLS: Any = [{"type": "function", "function": {"name": "get_delivery_date", "description": "Delivery date of an order",
          "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}]  # fmt: skip


def _gateway(tmp: Path, task: str, key: str = ai21_api.API_KEY) -> Iterator[Gateway]:
    with gateway(tmp, ai21_api.make_app(), "ai21labs", "jamba-large", task, config_field="ai21labsConfig",
                 key_field="ai21labsApiKey", key=key, base_field="ai21labsApiBase") as gw:  # fmt: skip
        yield gw


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from _gateway(tmp_path_factory.mktemp("chat"), "llm/v1/chat")


def test_chat(chat: Gateway) -> None:
    answer = chat.client.chat.completions.create(
        model=ENDPOINT, messages=[{"role": "user", "content": "Hi"}], temperature=1.5, top_p=0.9, max_tokens=64, n=1
    )
    assert answer.object == "chat.completion"
    assert answer.model == "jamba-large"
    assert answer.choices[0].message.content == ai21_api.REPLY
    assert answer.usage is not None
    assert answer.usage.total_tokens == 158
    assert {k: chat.requests[-1][k] for k in ("temperature", "top_p", "max_tokens")} == {"temperature": 1.5, "top_p": 0.9, "max_tokens": 64}


def test_chat_stream(chat: Gateway) -> None:
    chunks = e2e.stream_with_usage(chat)
    assert e2e.streamed_text(chunks) == ai21_api.REPLY
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 14


def test_tools(chat: Gateway) -> None:
    messages: list[Any] = [{"role": "user", "content": "When does order_12345 arrive?"}]
    first = chat.client.chat.completions.create(model=ENDPOINT, messages=messages, tools=TOOLS)
    assert first.choices[0].finish_reason == "tool_calls"
    call: Any = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert orjson.loads(call.function.arguments) == {"order_id": "order_12345"}
    messages += [first.choices[0].message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": "2025-01-01"}]
    second = chat.client.chat.completions.create(model=ENDPOINT, messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == ai21_api.REPLY
    stream = chat.client.chat.completions.create(model=ENDPOINT, messages=messages[:1], tools=TOOLS, stream=True)
    calls = e2e.streamed_tool_calls(stream)
    assert calls[0].id == ai21_api.TOOL_CALL_ID


def test_unsupported_parameter_is_a_clear_400(chat: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        chat.client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "Hi"}], seed=5)
    assert "seed" in str(info.value)


def test_several_choices_cannot_be_streamed(chat: Gateway) -> None:
    with pytest.raises(openai.UnprocessableEntityError, match="n must be 1 when stream is true"):
        list(chat.client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "Hi"}], n=2, stream=True))
    answer = chat.client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "Hi"}], n=2)
    assert answer.choices[0].message.content == ai21_api.REPLY
    assert chat.requests[-1]["n"] == 2


@pytest.mark.parametrize(("trigger", "status"), [("429", 429), ("500", 500), ("malformed", 502)])
def test_provider_failures(chat: Gateway, trigger: str, status: int) -> None:
    error = e2e.chat_error(chat, f"trigger:{trigger}")
    assert error.status_code == status


def test_completions_through_chat(tmp_path: Path) -> None:
    for gw in _gateway(tmp_path, "llm/v1/completions"):
        answer = gw.client.completions.create(model=ENDPOINT, prompt="Please complete: One fish, two fish")
        assert answer.choices[0].text == ai21_api.REPLY
        stream = gw.client.completions.create(model=ENDPOINT, prompt="One fish", stream=True)
        assert e2e.completion_text(stream) == ai21_api.REPLY


def test_wrong_key_is_refused_by_the_stand_in(tmp_path: Path) -> None:
    for gw in _gateway(tmp_path, "llm/v1/chat", key="ai21-wrong"):
        assert e2e.chat_error(gw).status_code == 401
