"""PaLM is retired: every request is refused with a clear 410, before any call."""

from __future__ import annotations

import asyncio

import pytest

from modelgate_proxy.errors import ProviderRetired
from modelgate_proxy.providers.palm import PaLMProvider
from modelgate_proxy.providers.registry import adapter_class
from tests.providers.helpers import NoHttp, PlainCredentials, ctx, external_model


@pytest.mark.parametrize("task", ["llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings"])
def test_every_task_is_refused_with_a_clear_4xx(task: str) -> None:
    model = external_model("palm", "chat-bison-001", task, {"palmApiKeyPlaintext": "k"})  # type: ignore[arg-type]
    provider = adapter_class("palm")(model, PlainCredentials(), NoHttp())
    assert isinstance(provider, PaLMProvider)
    with pytest.raises(ProviderRetired) as info:
        asyncio.run(provider.build_request(ctx(task), {"messages": [{"role": "user", "content": "hi"}]}))  # type: ignore[arg-type]
    assert info.value.status == 410
    assert "retired" in info.value.message
    assert "google-cloud-vertex-ai" in info.value.message
    with pytest.raises(ProviderRetired):
        provider.stream_decoder(ctx(task, stream=True), {})  # type: ignore[arg-type]
