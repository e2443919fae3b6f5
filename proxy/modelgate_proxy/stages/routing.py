"""Routing: pick the served entity by the endpoint's traffic split, and the order of the others."""

from __future__ import annotations

from ..pipeline import Exchange, Next, Result


class Routing:
    async def __call__(self, ex: Exchange, call_next: Next) -> Result:
        endpoint = ex.endpoint
        ex.order = endpoint.splitter.order()
        ex.entity = endpoint.entities[ex.order[0]]
        return await call_next(ex)
