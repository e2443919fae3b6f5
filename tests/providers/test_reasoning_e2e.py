"""Reasoning state across turns, through the real proxy with the official ``openai`` client as the caller: the
caller appends the assistant message it got (``model_dump``, as agent loops do) and sends the tool result; the
stand-ins refuse the next turn as the real APIs do when the reasoning state is missing (Gemini 3's thought
signature, Claude's signed thinking block with thinking on, on Anthropic, Vertex and Bedrock)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai
import pytest

from modelgate_proxy.endpoints.services import NO_AUTH, GatewaySettings
from modelgate_proxy.server.app import create_app
from tests.providers.e2e import ENDPOINT, drain, manifest
from tests.providers.vertex_keys import EMAIL, new_key
from tests.standins import anthropic_api
from tests.standins.bedrock_api import REASONING, BedrockStandIn, Key, reasoning_signature
from tests.standins.server import serve_app
from tests.standins.vertex_api import SKIP_SIGNATURE, VertexStandIn, thought_signature

ACCESS_KEY, SECRET_KEY = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOOLS: Any = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]  # fmt: skip
THINKING = {"type": "enabled", "budget_tokens": 2048}


@contextmanager
def proxy_for(provider: str, model: str, config_field: str, config: dict[str, Any]) -> Iterator[openai.OpenAI]:
    with serve_app(create_app([manifest(provider, model, "llm/v1/chat", config_field, config)], gateway=GatewaySettings(auth=NO_AUTH))) as proxy_url:
        yield openai.OpenAI(base_url=f"{proxy_url}/serving-endpoints", api_key="caller-token", max_retries=0, timeout=20)


def streamed_message(chunks: list[Any]) -> dict[str, Any]:
    """The assistant message a caller assembles from a stream: content, tool calls and, from the deltas' extra
    fields, ``reasoning_content`` and ``thinking_blocks``."""
    message: dict[str, Any] = {"role": "assistant", "content": "", "tool_calls": [], "reasoning_content": "", "thinking_blocks": []}
    for chunk in chunks:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        message["content"] += delta.content or ""
        extra = delta.model_extra or {}
        message["reasoning_content"] += extra.get("reasoning_content") or ""
        message["thinking_blocks"] += extra.get("thinking_blocks") or []
        for call in delta.tool_calls or []:
            if call.id:
                message["tool_calls"].append({"id": call.id, "type": "function", "function": {"name": call.function.name, "arguments": ""}})
            message["tool_calls"][call.index]["function"]["arguments"] += call.function.arguments or ""
    return message


def tool_round_trip(client: openai.OpenAI, *, stream: bool, **extra: Any) -> tuple[dict[str, Any], Any]:
    """First turn (a tool call) then the tool result; the assistant message as the caller sent it back and the
    second answer."""
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    if stream:
        message = streamed_message(list(client.chat.completions.create(model=ENDPOINT, messages=messages, tools=TOOLS, stream=True, **extra)))
    else:
        message = client.chat.completions.create(model=ENDPOINT, messages=messages, tools=TOOLS, **extra).choices[0].message.model_dump(exclude_none=True)
    call_id = message["tool_calls"][0]["id"]
    messages += [message, {"role": "tool", "tool_call_id": call_id, "content": "15C"}]
    return message, client.chat.completions.create(model=ENDPOINT, messages=messages, tools=TOOLS, **extra)


# --- Anthropic ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def anthropic() -> Iterator[tuple[Any, openai.OpenAI]]:
    app = anthropic_api.make_app()
    with serve_app(app) as url, proxy_for("anthropic", anthropic_api.MODEL, "anthropicConfig",
                                          {"anthropicApiKeyPlaintext": anthropic_api.API_KEY, "anthropicApiBase": url}) as client:
        yield app, client


@pytest.mark.parametrize("stream", [False, True])
def test_claude_thinking_blocks_come_back_before_the_tool_call(anthropic: tuple[Any, openai.OpenAI], stream: bool) -> None:
    app, client = anthropic
    message, second = tool_round_trip(client, stream=stream, max_tokens=4096, extra_body={"thinking": THINKING})
    block = {"type": "thinking", "thinking": anthropic_api.THOUGHT, "signature": anthropic_api.signature(anthropic_api.THOUGHT)}
    assert message["thinking_blocks"] == [block]
    assert message["reasoning_content"] == anthropic_api.THOUGHT
    assert second.choices[0].message.content == anthropic_api.REPLY
    assert app.state.requests[-1]["messages"][1]["content"][0] == block


def test_claude_refuses_a_tool_turn_without_its_thinking_block(anthropic: tuple[Any, openai.OpenAI]) -> None:
    _, client = anthropic
    with pytest.raises(openai.BadRequestError, match="Expected `thinking` or `redacted_thinking`, but found `tool_use`"):
        client.chat.completions.create(model=ENDPOINT, tools=TOOLS, max_tokens=4096, extra_body={"thinking": THINKING}, messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "t1", "content": "15C"}])


def test_empty_messages_never_reach_anthropic(anthropic: tuple[Any, openai.OpenAI]) -> None:
    app, client = anthropic
    answer = client.chat.completions.create(model=ENDPOINT, messages=[
        {"role": "system", "content": ""}, {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""}, {"role": "user", "content": "Hello?"}])
    assert answer.choices[0].message.content == anthropic_api.REPLY
    sent = app.state.requests[-1]
    assert (sent["system"], sent["messages"]) == ("Be brief.", [{"role": "user", "content": [
        {"type": "text", "text": "Hi"}, {"type": "text", "text": "Hello?"}]}])
    with pytest.raises(openai.BadRequestError, match=r"messages\[1\] is a user message with empty content"):
        client.chat.completions.create(model=ENDPOINT, messages=[{"role": "system", "content": "x"}, {"role": "user", "content": ""}])


def test_openai_metadata_and_service_tier_reach_anthropic_in_its_terms(anthropic: tuple[Any, openai.OpenAI]) -> None:
    app, client = anthropic
    client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "Hi"}], user="u-7",
                                   metadata={"team": "search"}, service_tier="default")
    sent = app.state.requests[-1]
    assert (sent["metadata"], sent["service_tier"]) == ({"user_id": "u-7"}, "standard_only")
    client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "Hi"}], service_tier="flex")
    assert "service_tier" not in app.state.requests[-1]


# --- Vertex: Gemini 3 thought signatures, Claude ----------------------------------------------------------------


@pytest.fixture(scope="module")
def vertex() -> Iterator[tuple[VertexStandIn, dict[str, Any]]]:
    key = new_key()
    stand = VertexStandIn(accounts={EMAIL: (key.key_id, key.public)})
    with serve_app(stand.app) as url:
        yield stand, {"projectId": "my-project", "region": "global", "privateKeyPlaintext": key.key_file(f"{url}/token"),
                      "vertexApiBase": url}


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_3_thought_signature_rides_in_the_tool_call_id(vertex: tuple[VertexStandIn, dict[str, Any]], stream: bool) -> None:
    stand, config = vertex
    with proxy_for("google-cloud-vertex-ai", "gemini-3-pro-preview", "googleCloudVertexAiConfig", config) as client:
        message, second = tool_round_trip(client, stream=stream)
        signature = thought_signature({"name": "get_weather", "args": {"city": "Paris"}})
        assert message["tool_calls"][0]["id"].endswith("__thought__" + signature)
        assert second.choices[0].message.content == 'Tool said: {"content":"15C"}'
        sent = stand.calls[-1]["body"]["contents"][1]["parts"][0]
        assert sent == {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": signature}


def test_gemini_3_history_without_signatures_gets_the_documented_placeholder(vertex: tuple[VertexStandIn, dict[str, Any]]) -> None:
    stand, config = vertex
    with proxy_for("google-cloud-vertex-ai", "gemini-3-pro-preview", "googleCloudVertexAiConfig", config) as client:
        answer = client.chat.completions.create(model=ENDPOINT, tools=TOOLS, messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
            {"role": "tool", "tool_call_id": "t1", "content": "15C"}])
        assert answer.choices[0].message.content == 'Tool said: {"content":"15C"}'
        assert stand.calls[-1]["body"]["contents"][1]["parts"][0]["thoughtSignature"] == SKIP_SIGNATURE


def test_gemini_streams_every_candidate(vertex: tuple[VertexStandIn, dict[str, Any]]) -> None:
    _, config = vertex
    with proxy_for("google-cloud-vertex-ai", "gemini-2.5-flash", "googleCloudVertexAiConfig", config) as client:
        chunks = list(client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "a b"}], n=2, stream=True))
        texts = {i: "".join(c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].index == i) for i in (0, 1)}
        assert texts == {0: "Echo: a b", 1: "[1] Echo: a b"}
        finishes = sorted((c.choices[0].index, c.choices[0].finish_reason) for c in chunks if c.choices and c.choices[0].finish_reason)
        assert finishes == [(0, "stop"), (1, "stop")]
        plain = client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "a b"}], n=2)
        assert [c.message.content for c in plain.choices] == ["Echo: a b", "[1] Echo: a b"]


@pytest.mark.parametrize("stream", [False, True])
def test_claude_on_vertex_thinking_round_trip(vertex: tuple[VertexStandIn, dict[str, Any]], stream: bool) -> None:
    stand, config = vertex
    with proxy_for("google-cloud-vertex-ai", "claude-sonnet-4-5@20250929", "googleCloudVertexAiConfig", config) as client:
        message, second = tool_round_trip(client, stream=stream, max_tokens=4096, extra_body={"thinking": THINKING})
        assert message["reasoning_content"] == anthropic_api.THOUGHT
        assert second.choices[0].message.content == "Tool said: 15C"
        assert stand.calls[-1]["body"]["messages"][1]["content"][0]["type"] == "thinking"


def test_claude_on_vertex_takes_a_prefill(vertex: tuple[VertexStandIn, dict[str, Any]]) -> None:
    _, config = vertex
    with proxy_for("google-cloud-vertex-ai", "claude-sonnet-4-5@20250929", "googleCloudVertexAiConfig", config) as client:
        answer = client.chat.completions.create(model=ENDPOINT, messages=[
            {"role": "user", "content": "hi"}, {"role": "assistant", "content": "Echo:"}])
        assert answer.choices[0].message.content == "Echo: hi"


# --- Bedrock Converse -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bedrock() -> Iterator[tuple[BedrockStandIn, dict[str, Any]]]:
    stand = BedrockStandIn(keys={ACCESS_KEY: Key(SECRET_KEY)})
    with serve_app(stand.app) as url:
        yield stand, {"awsRegion": "us-east-1", "bedrockProvider": "anthropic", "awsEndpointUrl": url,
                      "awsAccessKeyIdPlaintext": ACCESS_KEY, "awsSecretAccessKeyPlaintext": SECRET_KEY}


@pytest.mark.parametrize("stream", [False, True])
def test_converse_reasoning_content_comes_back_before_the_tool_use(bedrock: tuple[BedrockStandIn, dict[str, Any]], stream: bool) -> None:
    stand, config = bedrock
    with proxy_for("amazon-bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0", "amazonBedrockConfig", config) as client:
        extra = {"extra_body": {"additionalModelRequestFields": {"thinking": THINKING}}}
        message, second = tool_round_trip(client, stream=stream, **extra)
        assert message["thinking_blocks"] == [{"type": "thinking", "thinking": REASONING, "signature": reasoning_signature(REASONING)}]
        assert second.choices[0].message.content == "Tool said: 15C"
        first = stand.calls[-1]["body"]["messages"][1]["content"][0]
        assert first == {"reasoningContent": {"reasoningText": {"text": REASONING, "signature": reasoning_signature(REASONING)}}}


def test_converse_text_before_an_exception_frame_in_the_same_write(bedrock: tuple[BedrockStandIn, dict[str, Any]]) -> None:
    _, config = bedrock
    with proxy_for("amazon-bedrock", "anthropic.claude-3-haiku-20240307-v1:0", "amazonBedrockConfig", config) as client:
        received: list[Any] = []
        stream = client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "[stream-error-burst]"}], stream=True)
        with pytest.raises(openai.APIError, match="The model stream failed"):
            drain(stream, received)
        assert "".join(c.choices[0].delta.content or "" for c in received if c.choices) == "Echo: "
