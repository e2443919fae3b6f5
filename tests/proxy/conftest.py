from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.standins.openai_api import OpenAIStandIn
from tests.standins.server import serve_app

from .redis_server import RedisServer

FAKE_KEY = "sk-SENTINEL-0f9e8d7c6b5a4f3e2d1c0b9a8fQxWzKv"
"""A fake OpenAI key that must never appear in logs, error bodies or /metrics. Its tail is not hexadecimal: the
leak tests look for its last 4 characters, and a hex tail turned up inside an object address of a DEBUG log line
(``0x7f42526d5c90``), a false leak."""


@pytest.fixture
def openai_standin() -> Iterator[tuple[OpenAIStandIn, str]]:
    standin = OpenAIStandIn(api_key=FAKE_KEY)
    with serve_app(standin.app) as url:
        yield standin, url


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the session (installed from Debian's packages when missing)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    redis_server.start()
    redis_server.flush()
    return redis_server.url
