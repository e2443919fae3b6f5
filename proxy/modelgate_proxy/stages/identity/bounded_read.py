"""Reading an HTTP answer's body whole, up to a bound (for the API server's and the issuer's answers).

``StreamReader.read(n)`` returns as soon as *some* bytes arrived, not ``n`` of them: a body that comes in several
TCP segments must be read until the end.
"""

from __future__ import annotations

import aiohttp


async def read_bounded(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The whole body, or ``None`` when it is longer than ``limit`` bytes (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await resp.content.readany()
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
