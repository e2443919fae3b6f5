"""A PaLM endpoint through the real proxy: a clear 410 in the caller's shape, never a call or a crash."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from tests.providers.e2e import ENDPOINT, client, entity
from tests.proxy.harness import endpoint, run_proxy


def test_palm_endpoint_answers_410_with_the_way_out(tmp_path: Path) -> None:
    palm = entity("palm", "chat-bison-001", "llm/v1/chat", "palmConfig", {"palmApiKeyPlaintext": "k"})
    with run_proxy(tmp_path, [endpoint(ENDPOINT, [palm])]) as proxy, pytest.raises(openai.APIStatusError) as info:
        client(proxy.base).chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "Hi"}])
    assert info.value.status_code == 410
    assert "retired" in str(info.value)
    assert "google-cloud-vertex-ai" in str(info.value)
