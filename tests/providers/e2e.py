"""End-to-end plumbing: a stand-in provider and the real proxy, started as ``modelgate serve`` starts it (the
proxy tests' harness), serving one ServingEndpoint whose provider base URL points at the stand-in and whose
API key is a ``{{secrets/...}}`` reference read from a Secret-volume layout; the official ``openai`` client is
the caller."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from starlette.applications import Starlette

from modelgate_proxy.spec import ServingEndpoint
from tests.proxy.harness import endpoint, run_proxy
from tests.standins.server import serve_app

ENDPOINT = "e2e-endpoint"
SECRET = "provider-key"
KEY_REFERENCE = "{{secrets/" + SECRET + "/api-key}}"


@dataclass
class Gateway:
    client: openai.OpenAI
    standin: Starlette

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Bodies the stand-in accepted, oldest first."""
        return self.standin.state.requests  # type: ignore[no-any-return]


def entity(provider: str, model: str, task: str, config_field: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"name": "primary", "externalModel": {"name": model, "provider": provider, "task": task, config_field: config}}


def manifest(provider: str, model: str, task: str, config_field: str, config: dict[str, Any]) -> ServingEndpoint:
    """A one-entity ServingEndpoint named :data:`ENDPOINT` (for tests that build the app themselves)."""
    return ServingEndpoint.model_validate(endpoint(ENDPOINT, [entity(provider, model, task, config_field, config)]))


def client(proxy_base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy_base, api_key="caller-token", max_retries=0, timeout=20)


@contextmanager
def gateway(tmp_path: Path, standin: Starlette, provider: str, model: str, task: str, *, config_field: str,
            key_field: str, key: str, base_field: str) -> Iterator[Gateway]:  # fmt: skip
    """Serve ``standin`` and the proxy; the endpoint's ``key_field`` references a Secret holding ``key``."""
    with serve_app(standin) as standin_url:
        config = {key_field: KEY_REFERENCE, base_field: standin_url}
        manifest = endpoint(ENDPOINT, [entity(provider, model, task, config_field, config)])
        with run_proxy(tmp_path, [manifest], secrets={SECRET: {"api-key": key}}) as proxy:
            yield Gateway(client(proxy.base), standin)


def chat_error(gw: Gateway, content: str = "Hi") -> openai.APIStatusError:
    """The error status the gateway answers a one-message chat with (the test fails on a 2xx)."""
    with pytest.raises(openai.APIStatusError) as info:
        gw.client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": content}])
    return info.value


def stream_with_usage(gw: Gateway, content: str = "Hi") -> list[Any]:
    """The chunks of a one-message chat stream that asks for usage in a last chunk."""
    stream = gw.client.chat.completions.create(
        model=ENDPOINT, messages=[{"role": "user", "content": content}], stream=True, stream_options={"include_usage": True}
    )
    return list(stream)


def drain(stream: Iterable[Any], into: list[Any]) -> None:
    """Read ``stream`` into ``into``, so what came before an error raised mid-stream stays inspectable."""
    for chunk in stream:
        into.append(chunk)


def streamed_text(chunks: Iterable[Any]) -> str:
    """The text of a chat stream (chunks without choices, such as the usage chunk, add none)."""
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def streamed_tool_calls(chunks: Iterable[Any]) -> list[Any]:
    """The tool-call deltas of a chat stream, in order."""
    return [t for c in chunks if c.choices for t in (c.choices[0].delta.tool_calls or [])]


def completion_text(chunks: Iterable[Any]) -> str:
    """The text of a completions stream."""
    return "".join(c.choices[0].text for c in chunks if c.choices)
