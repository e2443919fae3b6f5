"""SSE out: each provider event is re-encoded and flushed as it arrives, ``data: [DONE]`` last.

Two tasks per stream: the pump (provider -> caller) and a watcher of the caller's connection. Whichever ends
first ends the other; the provider response is then released (fully read) or closed (cut short), so a caller
that goes away never leaves a provider connection open. A provider failure mid-stream becomes one error event
in the route's error shape, then the end of the stream (no ``[DONE]``); the chunks decoded from the same read
before the failure (``chunks_before``) are sent ahead of it. A stream with output guardrails passes its decoded
chunks through the result's ``guard`` (:class:`~modelgate_proxy.exchange.StreamFilter`) before they are sent;
a guardrail refusal is such a failure.
"""

from __future__ import annotations

import asyncio
import logging
from time import perf_counter

import orjson

from ..aggregate import StreamAggregator
from ..error_shapes import error_event
from ..errors import DeadlineExceeded, GatewayError
from ..exchange import EntityRuntime, Exchange, Outcome, StreamEnd, Streaming
from ..json_types import JSON
from ..providers.base import chunks_before
from ..sse import DONE
from ..upstream import TRANSPORT_ERRORS, stream_broken
from ..usage_tokens import token_usage
from .asgi import Receive, Send

log = logging.getLogger("modelgate.proxy")

SSE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


class _StreamProgress:
    __slots__ = ("aggregate", "complete", "error", "first", "usage")

    def __init__(self, aggregate: StreamAggregator | None) -> None:
        self.complete = False
        self.first: float | None = None
        self.usage: object = None
        self.error: GatewayError | None = None
        self.aggregate = aggregate


def _start_headers(ex: Exchange, entity: EntityRuntime) -> list[tuple[bytes, bytes]]:
    """The SSE response's headers (served entity, proxy overhead, stage headers); records the overhead."""
    overhead = perf_counter() - ex.arrived - ex.upstream_seconds
    headers = [
        *SSE_HEADERS,
        (b"served-model-name", entity.name_header),
        (b"x-modelgate-overhead-ms", f"{overhead * 1000:.3f}".encode()),
    ]
    if ex.response_headers is not None:
        headers.extend(ex.response_headers)
    entity.metrics.overhead.observe(overhead)
    return headers


async def stream_response(ex: Exchange, result: Streaming, receive: Receive, send: Send) -> None:
    """Pump ``result`` to the caller until it ends, the caller disconnects, or the request's deadline passes
    (then the stream ends with a :class:`DeadlineExceeded` error event)."""
    resp = result.response
    entity = result.entity
    headers = _start_headers(ex, entity)
    progress = _StreamProgress(StreamAggregator(ex.task) if ex.finishers is not None else None)
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        pump = asyncio.ensure_future(_pump(ex, result, send, progress))
        watcher = asyncio.ensure_future(_caller_gone(receive))
        late = False
        try:
            timeout = max(ex.deadline - perf_counter(), 0.0)
            await asyncio.wait((pump, watcher), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            late = not pump.done() and not watcher.done()
        finally:
            watcher.cancel()
            if not pump.done():
                pump.cancel()
                await asyncio.wait((pump,))
        if late:
            progress.error = DeadlineExceeded(
                f"the stream did not complete within the request's deadline of {ex.deadline - ex.arrived:g} seconds")
            await _fail(ex, send, progress.error, progress)
    except OSError:
        pass  # the caller went away before the headers were sent
    finally:
        if progress.complete:
            resp.release()
        else:
            resp.close()
        _record(ex, result.entity, progress)
        if ex.finishers is not None:
            _finish(ex, progress, "complete" if progress.complete else "failed" if progress.error else "cancelled")


def _finish(ex: Exchange, progress: _StreamProgress, end: StreamEnd) -> None:
    body = progress.aggregate.answer() if progress.aggregate is not None else None
    answer = ex.answer if ex.answer is not None else body  # refused mid-stream: the provider's answer so far
    usage = token_usage(ex.task, ex.payload, answer) if answer is not None else None
    ex.finish(Outcome(200, perf_counter() - ex.arrived, body, progress.error, stream=end, usage=usage))


async def _caller_gone(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _encode(chunks: list[JSON], progress: _StreamProgress) -> bytes:
    if progress.aggregate is not None:
        progress.aggregate.feed(chunks)
    parts = []
    for chunk in chunks:
        usage = chunk.get("usage")
        if usage:
            progress.usage = usage
        parts.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
    return b"".join(parts)


async def _pump(ex: Exchange, result: Streaming, send: Send, progress: _StreamProgress) -> None:
    decoder = result.decoder
    guard = result.guard
    try:
        try:
            while True:
                data = await result.read()
                if not data:
                    break
                chunks = decoder.feed(data)
                if guard is not None and chunks:
                    chunks = await guard.feed(chunks)
                if chunks:
                    if progress.first is None:
                        progress.first = perf_counter()
                    await send({"type": "http.response.body", "body": _encode(chunks, progress), "more_body": True})
            tail = decoder.close()
            if guard is not None:
                tail = await guard.close(tail)
        except GatewayError as err:
            progress.error = err
            await _fail(ex, send, err, progress)
            return
        except TRANSPORT_ERRORS as exc:
            progress.error = stream_broken(exc)
            await _fail(ex, send, progress.error, progress)
            return
        progress.complete = True
        body = _encode(tail, progress) + DONE if tail else DONE
        if tail and progress.first is None:
            progress.first = perf_counter()
        await send({"type": "http.response.body", "body": body, "more_body": False})
    except OSError:
        pass  # the caller went away; the watcher ends the stream


async def _fail(ex: Exchange, send: Send, err: GatewayError, progress: _StreamProgress) -> None:
    """End the stream with ``err``'s error event, after the chunks decoded before it in the same read."""
    log.warning("endpoint %s: stream failed: %s", ex.endpoint.name, err.message)
    body = error_event(ex.api, err)
    partial = chunks_before(err)
    if partial:
        if progress.first is None:
            progress.first = perf_counter()
        body = _encode(partial, progress) + body
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _record(ex: Exchange, entity: EntityRuntime, progress: _StreamProgress) -> None:
    metrics = entity.metrics
    end = perf_counter()
    metrics.duration.observe(end - ex.arrived)
    if progress.first is not None:
        metrics.ttft.observe(progress.first - ex.arrived)
    tokens = metrics.usage(progress.usage)
    if tokens is not None and progress.first is not None and tokens[1] > 1:
        metrics.tpot.observe((end - progress.first) / (tokens[1] - 1))
