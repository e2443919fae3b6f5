"""The request checks Converse and Gemini share (providers/messages.py, tool_calls.py, params.py), pinned
through both translators so each keeps answering the same 400s and mappings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from modelgate_proxy.errors import BadRequest
from modelgate_proxy.providers.converse import converse_request
from modelgate_proxy.providers.gemini import generate_content_request

Translate = Callable[[dict[str, Any]], dict[str, Any]]
TRANSLATORS: list[Translate] = [lambda p: converse_request(p, "anthropic"), generate_content_request]
USER = {"role": "user", "content": "Hi"}
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}


@pytest.mark.parametrize("translate", TRANSLATORS)
@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"messages": []}, "non-empty list"),
        ({"messages": ["hi"]}, r"messages\[0\] must be an object"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "unsupported role 'robot'"),
        ({"messages": [{"role": "system", "content": "Be brief."}]}, "at least one user message"),
        ({"messages": [{"role": "user", "content": ""}]}, "at least one user message"),
        ({"messages": [{"role": "system", "content": [{"type": "image_url"}]}, USER]}, "only hold text parts"),
        ({"messages": [{"role": "user", "content": ["hi"]}]}, "parts must be objects"),
        ({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "does not support 'audio'"),
        ({"messages": [USER], "tools": [{"type": "retrieval"}]}, "function with a name"),
        ({"messages": [USER], "tools": [TOOL], "tool_choice": "sometimes"}, "tool_choice must be"),
        ({"messages": [USER], "stop": 5}, "stop must be"),
        ({"messages": [USER], "frobnicate": 1, "zzz": 2}, "'frobnicate'"),
    ],
)
def test_shared_refusals(translate: Translate, payload: dict[str, Any], match: str) -> None:
    with pytest.raises(BadRequest, match=match):
        translate(payload)


@pytest.mark.parametrize("translate", TRANSLATORS)
def test_bad_tool_call_arguments_are_refused(translate: Translate) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}
    with pytest.raises(BadRequest, match="JSON string") as info:
        translate({"messages": [USER, {"role": "assistant", "tool_calls": [call]}], "tools": [TOOL]})
    assert info.value.param == "messages"


def test_sampling_parameters_map_the_same_way() -> None:
    payload = {"messages": [USER], "max_tokens": 10, "max_completion_tokens": 20, "temperature": 0.5, "top_p": 0.9,
               "stop": "END", "user": "u-1", "stream": True, "parallel_tool_calls": False}  # fmt: skip
    assert converse_request(payload, "amazon")["inferenceConfig"] == {
        "maxTokens": 20, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]
    }  # fmt: skip
    assert generate_content_request(payload)["generationConfig"] == {
        "maxOutputTokens": 20, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]
    }  # fmt: skip


def test_tool_choice_modes() -> None:
    base = {"messages": [USER], "tools": [TOOL]}
    named = {"type": "function", "function": {"name": "f"}}
    assert [converse_request({**base, "tool_choice": c}, "amazon").get("toolConfig", {}).get("toolChoice")
            for c in (None, "auto", "required", named, "none")] == [
        {"auto": {}}, {"auto": {}}, {"any": {}}, {"tool": {"name": "f"}}, None
    ]  # fmt: skip
    assert [generate_content_request({**base, "tool_choice": c}).get("toolConfig")
            for c in (None, "auto", "required", named, "none")] == [
        None, None, {"functionCallingConfig": {"mode": "ANY"}},
        {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
        {"functionCallingConfig": {"mode": "NONE"}},
    ]  # fmt: skip


def test_consecutive_turns_join() -> None:
    payload = {"messages": [{"role": "developer", "content": "A"}, USER, {"role": "user", "content": "again"}]}
    assert converse_request(payload, "amazon")["messages"] == [
        {"role": "user", "content": [{"text": "Hi"}, {"text": "again"}]}
    ]
    assert converse_request(payload, "amazon")["system"] == [{"text": "A"}]
    out = generate_content_request(payload)
    assert out["contents"] == [{"role": "user", "parts": [{"text": "Hi"}, {"text": "again"}]}]
    assert out["systemInstruction"] == {"parts": [{"text": "A"}]}
