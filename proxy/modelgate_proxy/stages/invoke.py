"""The last link of the pipeline: one provider call for ``ex.entity``."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from time import perf_counter
from typing import TypeVar

from ..errors import BadUpstreamResponse, GatewayError, UpstreamError
from ..exchange import Completed, Exchange, Result, Streaming
from ..json_types import JSON
from ..providers.answer_checks import check_answer, redacted, secrets_of
from ..providers.base import CallContext, Provider, StreamDecoder, UpstreamRequest
from ..providers.reset_hints import reset_seconds
from ..upstream import Upstream

log = logging.getLogger("modelgate.proxy")
T = TypeVar("T")


class Invoke:
    __slots__ = ("upstream",)

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    async def __call__(self, ex: Exchange) -> Result:
        entity = ex.entity
        assert entity is not None, "the traffic split runs before invoke"
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
            body = await self.upstream.read_error(resp)
            ex.upstream_seconds += perf_counter() - started
            err = _readable(provider, provider.parse_error, resp.status, body, resp.headers)
            hint = reset_seconds(resp.status, resp.headers)  # read by stages.backpressure
            err.reset_in = hint if hint is not None else reset_seconds(resp.status, err.headers)
            raise redacted(_redacted(err), secrets_of(req))
        if ex.stream:
            ex.upstream_seconds += perf_counter() - started
            if "Content-Type" in resp.headers and resp.content_type not in provider.stream_media_types:
                resp.close()
                raise BadUpstreamResponse(f"{provider.name} answered a stream request with "
                                          f"{resp.content_type[:100]!r}, not an event stream")
            decoder = _GuardedDecoder(provider, provider.stream_decoder(ctx, ex.payload), req)
            return Streaming(entity, resp, decoder, ctx)
        body = await self.upstream.read(resp, ex.ticket)
        ex.upstream_seconds += perf_counter() - started
        answer = _readable(provider, provider.parse_response, ctx, ex.payload, body)
        check_answer(provider.name, ex.task, answer)
        return Completed(entity, answer)


def _readable(provider: Provider, translate: Callable[..., T], *args: object) -> T:
    """Run one translation of a provider's answer. A translator that trips over an answer of an unexpected
    shape (a string where a number belongs, a list where an object does) raises whatever Python raises; the
    caller gets a 502 that says the provider's answer could not be read, never a 500. The answer itself is not
    quoted or logged: it may echo the caller's data."""
    try:
        return translate(*args)
    except GatewayError:
        raise
    except Exception as exc:
        log.warning("provider %s: unreadable answer (%s in %s)", provider.name, type(exc).__name__, translate.__name__)
        raise BadUpstreamResponse(
            f"{provider.name} returned a response that could not be read ({type(exc).__name__})"
        ) from None


class _GuardedDecoder(StreamDecoder):
    """A provider's stream decoder whose unexpected failures become :class:`BadUpstreamResponse`, which the
    streaming response ends with an error event (see ``_readable``)."""

    __slots__ = ("_inner", "_provider", "_request")

    def __init__(self, provider: Provider, inner: StreamDecoder, request: UpstreamRequest | None = None) -> None:
        self._provider = provider
        self._inner = inner
        self._request = request

    def feed(self, data: bytes) -> list[JSON]:
        try:
            return _readable(self._provider, self._inner.feed, data)
        except GatewayError as err:
            raise self._clean(err) from None

    def close(self) -> list[JSON]:
        try:
            return _readable(self._provider, self._inner.close)
        except GatewayError as err:
            raise self._clean(err) from None

    def _clean(self, err: GatewayError) -> GatewayError:
        """``err`` without the call's credentials (an error event may quote them)."""
        return redacted(err, secrets_of(self._request)) if self._request is not None else err


_MASKED = re.compile(r"\S*\*{3,}\S*")


def _redacted(err: UpstreamError) -> UpstreamError:
    """Providers quote a masked key when they refuse it (``sk-ab****wxyz``); not even that reaches a caller."""
    if err.status in (401, 403):
        err.message = _MASKED.sub("[redacted]", err.message)
        err.args = (err.message,)
    return err
