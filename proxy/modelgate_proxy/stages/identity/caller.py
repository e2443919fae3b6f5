"""Caller identity: names the caller (``ex.principal``) from the trusted headers an authenticating proxy sets
(:mod:`.headers`). Added only when identity headers are configured and the endpoint has a layer
that uses the caller (rate limits, usage records, payload logs), or when ``--require-identity`` is set."""

from __future__ import annotations

from ...exchange import Exchange, Next, Result
from .headers import IdentityReader


class Identity:
    __slots__ = ("reader",)

    def __init__(self, reader: IdentityReader) -> None:
        self.reader = reader

    async def __call__(self, ex: Exchange, call_next: Next) -> Result:
        ex.principal = self.reader.read(ex.headers)
        return await call_next(ex)
