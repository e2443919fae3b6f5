"""A translating adapter (Anthropic) plugs into the same pipeline: the OpenAI client sees OpenAI answers."""

from __future__ import annotations

from pathlib import Path

import openai

from tests.standins.anthropic_api import API_KEY, make_app
from tests.standins.server import serve_app

from .harness import endpoint, run_proxy


def test_anthropic_through_the_proxy(tmp_path: Path) -> None:
    with serve_app(make_app()) as url:
        entity = {"externalModel": {"name": "claude-sonnet-4-5", "provider": "anthropic", "task": "llm/v1/chat",
                                    "anthropicConfig": {"anthropicApiKey": "{{secrets/anthropic/key}}",
                                                        "anthropicApiBase": url}}}
        with run_proxy(tmp_path, [endpoint("claude", [entity])], secrets={"anthropic": {"key": API_KEY}}) as proxy:
            client = openai.OpenAI(base_url=proxy.base, api_key="x", max_retries=0)
            chat = client.chat.completions.create(model="claude", messages=[{"role": "user", "content": "Hi"}],
                                                  max_tokens=50)
            assert chat.choices[0].message.content
            chunks = list(client.chat.completions.create(
                model="claude", messages=[{"role": "user", "content": "Hi"}], max_tokens=50, stream=True))
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert chunks[-1].usage is not None
