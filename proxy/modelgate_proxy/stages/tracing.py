"""OpenTelemetry spans of a request (docs/tracing.md), made only when tracing is on, so tracing off costs nothing
on the request path:

- :class:`TraceRequest`, the pipeline's first stage (:mod:`modelgate_proxy.endpoints.stage_list`): one SERVER
  span per request (a child of the caller's W3C ``traceparent``), ended when the answer is over
  (:meth:`~modelgate_proxy.exchange.Exchange.on_finish`; a stream at its end);
- :class:`TraceAttempt`, a wrapper around the one-provider-call link (:mod:`modelgate_proxy.endpoints.build`):
  one CLIENT span per call, so every retry and fallback is a span of its own; the provider gets its
  ``traceparent`` (:func:`~modelgate_proxy.traces.outgoing_headers`). A streamed attempt's span ends with the
  stream.

Attributes follow the OpenTelemetry GenAI semantic conventions (``gen_ai.operation.name``,
``gen_ai.provider.name``, ``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.response.finish_reasons``,
``gen_ai.usage.input_tokens`` / ``output_tokens``, ``server.address``, ``error.type``); no prompt or answer text.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from time import perf_counter
from types import MappingProxyType
from typing import Any, TypeVar

from ..errors import GatewayError
from ..exchange import Completed, Exchange, Next, Outcome, Result
from ..traces import ATTEMPT, OPERATIONS, PROVIDER_NAMES, Tracing, answer_attributes, end_span

SERVER_SPAN = "otel.server_span"
OPEN_ATTEMPT = "otel.open_attempt"
ANSWER = "otel.answer"
"""``Exchange.extra`` keys: the request's span, a streamed attempt's span that ends with the stream, and the last
attempt's answer with its attributes (the request's span reads them again when the caller got that answer)."""

_REQUEST_PARAMETERS = (("max_tokens", "gen_ai.request.max_tokens"), ("temperature", "gen_ai.request.temperature"),
                       ("top_p", "gen_ai.request.top_p"))


class TraceRequest:
    __slots__ = ("starts", "tracing")

    def __init__(self, tracing: Tracing) -> None:
        self.tracing = tracing
        self.starts: dict[tuple[str, str, bool], tuple[str, Mapping[str, Any]]] = {}
        """(endpoint, task, stream) -> the span's name and first attributes, made once (the spans' base
        attributes: never changed, encoded once by the exporter)."""

    def __call__(self, ex: Exchange, call_next: Next) -> Awaitable[Result]:
        # not a coroutine (exchange.Stage): the span ends in its finisher, so nothing waits here for the answer
        # (one coroutine frame fewer, resumed on every suspension of the provider call)
        start = _start_of(self.starts, (ex.endpoint.name, ex.task, ex.stream), _request_start)
        start_ns = time.time_ns() - int((perf_counter() - ex.arrived) * 1e9)
        ex.extra[SERVER_SPAN] = self.tracing.start_request(start[0], ex.headers, start[1], start_ns)
        ex.on_finish(_finish_request)
        return call_next(ex)


_STARTS_BOUND = 1024
"""Start attributes kept per stage (endpoints x tasks x stream, or served entities: configuration; bounded)."""

_Key = TypeVar("_Key", bound=tuple[Any, ...])
_Start = tuple[str, Mapping[str, Any]]


def _start_of(starts: dict[_Key, _Start], key: _Key, make: Callable[..., _Start]) -> _Start:
    """``make(*key)`` (a span's name and base attributes), made once per key; at most :data:`_STARTS_BOUND` kept
    (a full cache starts again empty)."""
    start = starts.get(key)
    if start is None:
        if len(starts) >= _STARTS_BOUND:
            starts.clear()
        start = starts[key] = make(*key)
    return start


def _request_start(endpoint: str, task: str, stream: bool) -> tuple[str, Mapping[str, Any]]:
    operation = OPERATIONS.get(task, task)
    return f"{operation} {endpoint}", MappingProxyType({
        "gen_ai.operation.name": operation, "gen_ai.request.model": endpoint, "gen_ai.request.stream": stream,
        "http.request.method": "POST", "modelgate.endpoint": endpoint,
    })


def _finish_request(ex: Exchange, outcome: Outcome) -> None:
    seen = ex.extra.pop(ANSWER, None)  # the attempt's answer, read once
    answer = dict(seen[1]) if seen is not None and seen[0] is outcome.body else answer_attributes(outcome.body)
    if outcome.usage is not None:
        answer["gen_ai.usage.input_tokens"] = outcome.usage.input
        answer["gen_ai.usage.output_tokens"] = outcome.usage.output
    error = type(outcome.error).__name__ if outcome.error is not None else None
    message = outcome.error.message if outcome.error is not None else None
    if error is None and outcome.status >= 400:
        error = str(outcome.status)
    attempt = ex.extra.pop(OPEN_ATTEMPT, None)
    if attempt is not None:  # a stream: its attempt ends with it
        end_span(attempt, answer, error, message)
    span = ex.extra.pop(SERVER_SPAN, None)
    if span is not None:
        attributes = {**answer, "http.response.status_code": outcome.status, "modelgate.attempts": ex.attempts}
        if ex.entity is not None:
            attributes["modelgate.served_entity"] = ex.entity.name
        if ex.request_id is not None:
            attributes["modelgate.request_id"] = ex.request_id
        end_span(span, attributes, error, message)


class TraceAttempt:
    """``call`` (one provider call for ``ex.entity``) inside a client span."""

    __slots__ = ("call", "starts", "tracing")

    def __init__(self, tracing: Tracing, call: Next) -> None:
        self.tracing, self.call = tracing, call
        self.starts: dict[tuple[str, str, str, str], tuple[str, Mapping[str, Any]]] = {}
        """(entity, model, provider, task) -> the span's name and constant (base) attributes, made once."""

    async def __call__(self, ex: Exchange) -> Result:
        call_next = self.call
        previous = ex.extra.pop(OPEN_ATTEMPT, None)
        if previous is not None:  # a stream given up before its first byte reached the caller (then retried)
            end_span(previous, {}, "abandoned", "the stream was left before it reached the caller")
        entity = ex.entity
        if entity is None:
            return await call_next(ex)
        model = entity.spec.external_model
        start = _start_of(self.starts, (entity.name, model.name, model.provider, ex.task), _attempt_start)
        attributes: dict[str, Any] = {"modelgate.attempt": ex.attempts + 1}
        payload = ex.payload
        for key, attribute in _REQUEST_PARAMETERS:
            value = payload.get(key)
            if value is not None and isinstance(value, int | float) and not isinstance(value, bool):
                attributes[attribute] = value
        span = self.tracing.start_attempt(ex.extra.get(SERVER_SPAN), start[0], attributes, start[1])
        token = ATTEMPT.set(span)
        try:
            result = await call_next(ex)
        except GatewayError as err:
            end_span(span, {"http.response.status_code": err.status}, type(err).__name__, err.message)
            raise
        except BaseException as exc:
            end_span(span, {}, type(exc).__name__)
            raise
        finally:
            ATTEMPT.reset(token)
        if isinstance(result, Completed):
            answer = answer_attributes(result.body)
            ex.extra[ANSWER] = (result.body, answer)
            end_span(span, answer)
        else:
            ex.extra[OPEN_ATTEMPT] = span
        return result


def _attempt_start(entity: str, model: str, provider: str, task: str) -> tuple[str, Mapping[str, Any]]:
    operation = OPERATIONS.get(task, task)
    return f"{operation} {model}", MappingProxyType({
        "gen_ai.operation.name": operation, "gen_ai.provider.name": PROVIDER_NAMES.get(provider, provider),
        "gen_ai.request.model": model, "modelgate.served_entity": entity,
    })
