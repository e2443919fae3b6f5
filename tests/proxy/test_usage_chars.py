"""The character counts of the usage table and the token estimates (``request_chars``, ``answer_chars``) count
exactly the text the walkers the guardrails use yield (``request_texts``, ``answer_texts``)."""

from __future__ import annotations

from typing import Any

import pytest

from modelgate_proxy.spec import Task
from modelgate_proxy.usage_tokens import answer_chars, answer_texts, request_chars, request_texts, token_usage

REQUESTS: list[tuple[Task, dict[str, Any]]] = [
    ("llm/v1/chat", {"messages": [{"role": "user", "content": "Hello, please answer."}]}),
    ("llm/v1/chat", {"messages": [{"role": "system", "content": "Be brief"},
                                  {"role": "user", "content": [{"type": "text", "text": "Zürich 🌍"},
                                                               {"type": "image_url", "image_url": {"url": "x"}},
                                                               {"type": "text", "text": 5}, "loose"]},
                                  {"role": "assistant", "content": None}, "not a message", {"role": "tool"}]}),
    ("llm/v1/chat", {"messages": "not a list"}),
    ("llm/v1/chat", {}),
    ("llm/v1/completions", {"prompt": "Once upon a time"}),
    ("llm/v1/completions", {"prompt": ["one", "two", 3, ["x"]]}),
    ("llm/v1/completions", {"prompt": [1, 2, 3]}),
    ("llm/v1/embeddings", {"input": "embed me"}),
    ("llm/v1/embeddings", {"input": ["a", "bc", None]}),
    ("llm/v1/embeddings", {"input": {"odd": True}}),
]

ANSWERS: list[dict[str, Any]] = [
    {"choices": [{"message": {"role": "assistant", "content": "Hello! This is a fixed benchmark response."}}]},
    {"choices": [{"message": {"content": None, "tool_calls": [
        {"function": {"name": "f", "arguments": "{\"city\": \"Zürich\"}"}}, {"function": {"arguments": 7}},
        "odd", {"type": "function"}]}}, "odd", {"text": "completion text", "message": "not a dict"}]},
    {"choices": [{"message": {"content": [{"type": "text", "text": "part one"}, {"type": "text"}]}}]},
    {"choices": [{"text": "a completion"}, {"text": None}]},
    {"choices": "not a list"},
    {"data": [{"embedding": [0.1]}]},
]


@pytest.mark.parametrize(("task", "payload"), REQUESTS)
def test_request_chars_count_what_the_walker_yields(task: Task, payload: dict[str, Any]) -> None:
    assert request_chars(task, payload) == sum(map(len, request_texts(task, payload)))


@pytest.mark.parametrize("answer", ANSWERS)
def test_answer_chars_count_what_the_walker_yields(answer: dict[str, Any]) -> None:
    assert answer_chars(answer) == sum(map(len, answer_texts(answer)))


def test_the_counts_are_the_text_lengths_and_feed_the_estimate() -> None:
    task, payload = REQUESTS[1]
    assert request_chars(task, payload) == len("Be brief") + len("Zürich 🌍")  # code points, not bytes
    assert answer_chars(ANSWERS[1]) == len("{\"city\": \"Zürich\"}") + len("completion text")
    usage = token_usage(task, payload, ANSWERS[0])  # no usage in the answer: both estimated
    assert usage.estimated
    assert usage.input == (len("Be brief") + len("Zürich 🌍") + 1) // 4
    assert usage.output == (len("Hello! This is a fixed benchmark response.") + 1) // 4
