"""Answers that arrive in several pieces are read whole (``StreamReader.read(n)`` alone returns the first piece),
and answers over the bound are refused."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from modelgate_proxy.stages.identity.bounded_read import read_bounded
from tests.standins.server import serve_app


async def _slow_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    parts = 40 if scope["path"] == "/big" else 3
    for i in range(parts):
        await send({"type": "http.response.body", "body": b'{"a": "' + b"x" * 1000 + b'", ' if i < parts - 1 else b'"z": 1}',
                    "more_body": i < parts - 1})
        await asyncio.sleep(0.02)


def test_pieces_are_joined_and_the_bound_holds() -> None:
    async def scenario(base: str) -> tuple[bytes | None, bytes | None]:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/small") as resp:
                small = await read_bounded(resp, 10_000)
            async with session.get(f"{base}/big") as resp:
                big = await read_bounded(resp, 10_000)
        return small, big

    with serve_app(_slow_app) as base:
        small, big = asyncio.run(scenario(base))
    assert small is not None
    assert small.endswith(b'"z": 1}')
    assert len(small) == 2 * 1010 + 7
    assert big is None
