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
from time import perf_counter
from typing import Any

from ..errors import GatewayError
from ..exchange import Completed, Exchange, Next, Outcome, Result
from ..traces import ATTEMPT, OPERATIONS, PROVIDER_NAMES, Tracing, answer_attributes, end_span

SERVER_SPAN = "otel.server_span"
OPEN_ATTEMPT = "otel.open_attempt"
"""``Exchange.extra`` keys: the request's span, and a streamed attempt's span that ends with the stream."""

_REQUEST_PARAMETERS = (("max_tokens", "gen_ai.request.max_tokens"), ("temperature", "gen_ai.request.temperature"),
                       ("top_p", "gen_ai.request.top_p"))


class TraceRequest:
    __slots__ = ("tracing",)

    def __init__(self, tracing: Tracing) -> None:
        self.tracing = tracing

    async def __call__(self, ex: Exchange, call_next: Next) -> Result:
        operation = OPERATIONS.get(ex.task, ex.task)
        start_ns = time.time_ns() - int((perf_counter() - ex.arrived) * 1e9)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation, "gen_ai.request.model": ex.endpoint.name,
            "gen_ai.request.stream": ex.stream, "http.request.method": "POST",
            "modelgate.endpoint": ex.endpoint.name,
        }
        ex.extra[SERVER_SPAN] = self.tracing.start_request(f"{operation} {ex.endpoint.name}", ex.headers,
                                                           attributes, start_ns)
        ex.on_finish(_finish_request)
        return await call_next(ex)


def _finish_request(ex: Exchange, outcome: Outcome) -> None:
    answer = answer_attributes(outcome.body)
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

    __slots__ = ("call", "tracing")

    def __init__(self, tracing: Tracing, call: Next) -> None:
        self.tracing, self.call = tracing, call

    async def __call__(self, ex: Exchange) -> Result:
        call_next = self.call
        previous = ex.extra.pop(OPEN_ATTEMPT, None)
        if previous is not None:  # a stream given up before its first byte reached the caller (then retried)
            end_span(previous, {}, "abandoned", "the stream was left before it reached the caller")
        entity = ex.entity
        if entity is None:
            return await call_next(ex)
        model = entity.spec.external_model
        operation = OPERATIONS.get(ex.task, ex.task)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": PROVIDER_NAMES.get(model.provider, model.provider),
            "gen_ai.request.model": model.name, "modelgate.served_entity": entity.name,
            "modelgate.attempt": ex.attempts + 1,
        }
        for key, attribute in _REQUEST_PARAMETERS:
            value = ex.payload.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                attributes[attribute] = value
        span = self.tracing.start_attempt(ex.extra.get(SERVER_SPAN), f"{operation} {model.name}", attributes)
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
            end_span(span, answer_attributes(result.body))
        else:
            ex.extra[OPEN_ATTEMPT] = span
        return result
