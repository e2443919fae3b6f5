"""The official openai client, unmodified, against the proxy started through `modelgate serve`'s code path."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest

from tests.standins.openai_api import OpenAIStandIn

from .conftest import FAKE_KEY
from .harness import endpoint, openai_entity, run_proxy

TOOLS = [{"type": "function", "function": {"name": "get_current_weather", "description": "Weather in a city",
                                           "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                                                          "required": ["location"]}}}]


def manifests(url: str) -> list[dict]:
    return [
        endpoint("chat", [openai_entity(url)]),
        endpoint("complete", [openai_entity(url, model="gpt-3.5-turbo-instruct", task="llm/v1/completions")]),
        endpoint("embed", [openai_entity(url, model="text-embedding-3-small", task="llm/v1/embeddings")]),
    ]


SECRETS = {"openai": {"api-key": FAKE_KEY}}


def test_sync_chat_completions_embeddings(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    standin, url = openai_standin
    with run_proxy(tmp_path, manifests(url), secrets=SECRETS) as proxy:
        client = openai.OpenAI(base_url=proxy.base, api_key="caller-token", max_retries=0)
        chat = client.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "Hello there"}])
        assert chat.headers["served-model-name"] == "gpt-4o-mini"
        assert float(chat.headers["x-modelgate-overhead-ms"]) >= 0
        parsed = chat.parse()
        assert parsed.choices[0].message.content == "You said: Hello there"
        assert parsed.usage is not None
        assert parsed.usage.total_tokens > 0
        sent = standin.stats.last
        assert sent["path"] == "/v1/chat/completions"
        assert sent["body"]["model"] == "gpt-4o-mini"
        assert sent["headers"]["authorization"] == f"Bearer {FAKE_KEY}"

        completion = client.completions.create(model="complete", prompt="Say this is a test", max_tokens=7)
        assert completion.choices[0].text == "This is indeed a test"

        emb = client.embeddings.create(model="embed", input=["abc", "defgh"])
        # the client asked for base64 and decoded it: the vectors survive the proxy byte for byte
        assert [d.embedding for d in emb.data] == [[3.0, 0.5, -0.25], [5.0, 0.5, -0.25]]
        assert standin.stats.last["body"]["encoding_format"] == "base64"


def test_sync_streaming_and_tool_calls(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    standin, url = openai_standin
    with run_proxy(tmp_path, manifests(url), secrets=SECRETS) as proxy:
        client = openai.OpenAI(base_url=proxy.base, api_key="caller-token", max_retries=0)
        stream = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "one two three"}], stream=True)
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "You said: one two three"
        assert chunks[-1].choices == []
        assert chunks[-1].usage is not None
        assert standin.stats.last["body"]["stream_options"] == {"include_usage": True}

        result = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "Weather in Boston?"}], tools=TOOLS,
            tool_choice="auto", temperature=0.2, seed=7, logit_bias={"50256": -100}, presence_penalty=0.5,
            frequency_penalty=0.1, response_format={"type": "json_object"}, n=1,
            extra_body={"custom_param": {"x": 1}})
        call = result.choices[0].message.tool_calls[0]
        assert call.function.name == "get_current_weather"
        assert result.choices[0].finish_reason == "tool_calls"
        body = standin.stats.last["body"]
        for key, value in {"tools": TOOLS, "tool_choice": "auto", "temperature": 0.2, "seed": 7,
                           "logit_bias": {"50256": -100}, "presence_penalty": 0.5, "frequency_penalty": 0.1,
                           "response_format": {"type": "json_object"}, "n": 1, "custom_param": {"x": 1}}.items():
            assert body[key] == value, key

        streamed = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "Weather?"}], tools=TOOLS, stream=True)
        args = "".join(
            c.choices[0].delta.tool_calls[0].function.arguments or ""
            for c in streamed if c.choices and c.choices[0].delta.tool_calls
        )
        assert args == '{"location": "Boston, MA"}'


def test_async_client(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    _standin, url = openai_standin

    async def scenario(base: str) -> None:
        client = openai.AsyncOpenAI(base_url=base, api_key="caller-token", max_retries=0)
        chat = await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
        assert chat.choices[0].message.content == "You said: hi"
        stream = await client.completions.create(model="complete", prompt="x", stream=True)
        pieces = [c.choices[0].text async for c in stream if c.choices]
        assert "".join(pieces) == "This is indeed a test"
        emb = await client.embeddings.create(model="embed", input="abcd", encoding_format="float")
        assert emb.data[0].embedding == [4.0, 0.5, -0.25]
        await client.close()

    with run_proxy(tmp_path, manifests(url), secrets=SECRETS) as proxy:
        asyncio.run(scenario(proxy.base))


def test_multipart_image_content_passes_through(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    standin, url = openai_standin
    image = "data:image/png;base64," + "A" * (3 * 1024 * 1024)  # a 3 MiB image fits the default body limit
    content = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": image, "detail": "low"}}]
    with run_proxy(tmp_path, manifests(url), secrets=SECRETS) as proxy:
        client = openai.OpenAI(base_url=proxy.base, api_key="caller-token", max_retries=0)
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": content}])
        assert standin.stats.last["body"]["messages"][0]["content"] == content


@pytest.mark.parametrize(
    ("trigger", "exc", "status"),
    [("__fail_500__", openai.InternalServerError, 500), ("__rate_limit__", openai.RateLimitError, 429)],
)
def test_upstream_errors_reach_the_client_typed(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str],
                                                trigger: str, exc: type[Exception], status: int) -> None:
    _, url = openai_standin
    with run_proxy(tmp_path, manifests(url), secrets=SECRETS) as proxy:
        client = openai.OpenAI(base_url=proxy.base, api_key="caller-token", max_retries=0)
        with pytest.raises(exc) as info:
            client.chat.completions.create(model="chat", messages=[{"role": "user", "content": trigger}])
        assert info.value.status_code == status  # type: ignore[attr-defined]
        if status == 429:
            assert info.value.response.headers["retry-after"] == "7"  # type: ignore[attr-defined]
            assert "Rate limit reached" in str(info.value)
