from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.standins.openai_api import OpenAIStandIn
from tests.standins.server import serve_app

FAKE_KEY = "sk-SENTINEL-0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c"
"""A fake OpenAI key that must never appear in logs, error bodies or /metrics."""


@pytest.fixture
def openai_standin() -> Iterator[tuple[OpenAIStandIn, str]]:
    standin = OpenAIStandIn(api_key=FAKE_KEY)
    with serve_app(standin.app) as url:
        yield standin, url
