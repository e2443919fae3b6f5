"""The last link of the pipeline: one provider call for ``ex.entity``."""

from __future__ import annotations

import re
from time import perf_counter

from ..errors import UpstreamError
from ..pipeline import Completed, Exchange, Result, Streaming
from ..providers.base import CallContext
from ..upstream import Upstream


class Invoke:
    __slots__ = ("upstream",)

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    async def __call__(self, ex: Exchange) -> Result:
        entity = ex.entity
        assert entity is not None, "routing runs before invoke"
        ex.attempts += 1
        provider = entity.provider()
        ctx = CallContext(endpoint=ex.endpoint.name, entity=entity.name, task=ex.task, stream=ex.stream)
        req = await provider.build_request(ctx, ex.payload)
        started = perf_counter()
        try:
            resp = await self.upstream.send(req)
        except Exception:
            entity.metrics.upstream_status(0)
            ex.upstream_seconds += perf_counter() - started
            raise
        entity.metrics.upstream_status(resp.status)
        if resp.status >= 300:
            body = await self.upstream.read(resp)
            ex.upstream_seconds += perf_counter() - started
            raise _redacted(provider.parse_error(resp.status, body, resp.headers))
        if ex.stream:
            ex.upstream_seconds += perf_counter() - started
            return Streaming(entity, resp, provider.stream_decoder(ctx, ex.payload), ctx)
        body = await self.upstream.read(resp)
        ex.upstream_seconds += perf_counter() - started
        return Completed(entity, provider.parse_response(ctx, ex.payload, body))


_MASKED = re.compile(r"\S*\*{3,}\S*")


def _redacted(err: UpstreamError) -> UpstreamError:
    """Providers quote a masked key when they refuse it (``sk-ab****wxyz``); not even that reaches a caller."""
    if err.status in (401, 403):
        err.message = _MASKED.sub("[redacted]", err.message)
        err.args = (err.message,)
    return err
