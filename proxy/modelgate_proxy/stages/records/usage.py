"""Usage tracking (``aiGateway.usageTrackingConfig.enabled``): one JSON record per request, ``"record": "usage"``,
to the usage sink (standard output unless ``--usage-log``), ``modelgate_usage_tokens_total``, and the usage per
principal (``modelgate_principal_requests_total``, ``modelgate_principal_tokens_total``, with a bounded number of
principals: :class:`modelgate_proxy.metrics.PrincipalUsage`).

Tokens are the provider's ``usage`` (for streams, the chunk that carries it) or Databricks' estimate
``(text length + 1) / 4`` where it gave none (``tokens_estimated``); requests that got no provider answer have
``null`` tokens. Records carry configuration names, the caller's principal and the caller's own
``client_request_id`` / ``usage_context``; never a credential or a header.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from ...exchange import Exchange, Next, Outcome, Result
from ...usage_tokens import answer_chars, request_chars
from .sinks import RecordSink
from .table_rows import arrival, usage_row
from .tables import EndpointTables
from .timestamps import utc_now_ms

if TYPE_CHECKING:
    from prometheus_client import Counter

    from ...metrics import LoopCounter, PrincipalUsage


class UsageTracking:
    __slots__ = ("_children", "counter", "principals", "sink", "tables")

    def __init__(self, sink: RecordSink | None, counter: Counter | LoopCounter, principals: PrincipalUsage | None = None,
                 tables: EndpointTables | None = None) -> None:
        self.sink, self.counter, self.principals, self.tables = sink, counter, principals, tables
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def __call__(self, ex: Exchange, call_next: Next) -> Awaitable[Result]:
        # not a coroutine: the stage only registers its finisher (exchange.Stage)
        ex.ensure_request_id()
        ex.on_finish(self.record)
        return call_next(ex)

    def record(self, ex: Exchange, outcome: Outcome) -> None:
        entity = ex.entity
        usage = outcome.usage
        principal = ex.principal
        tables = self.tables
        if tables is not None and tables.usage is not None:
            tables.usage.put(usage_row(
                request_id=ex.ensure_request_id(), client_request_id=ex.client_request_id, time=arrival(outcome.latency),
                status=outcome.status, requester=principal.name if principal is not None else "anonymous",
                input_tokens=usage.input if usage is not None else None,
                output_tokens=usage.output if usage is not None else None, usage_context=ex.usage_context,
                streaming=ex.stream, entity_id=tables.entity_ids.get(entity.name) if entity is not None else None,
                # characters of the text (len of each string: no walk over the characters themselves)
                input_chars=request_chars(ex.task, ex.payload),
                output_chars=answer_chars(outcome.body) if outcome.body is not None else None))
        if self.sink is not None:
            self._json_record(ex, outcome)
        if self.principals is not None:
            self.principals.record(ex.endpoint.name, principal.kind if principal is not None else "anonymous",
                                   principal.name if principal is not None else "anonymous",
                                   usage.input if usage is not None else None,
                                   usage.output if usage is not None else None)
        if usage is not None and entity is not None:
            key = (ex.endpoint.name, entity.name)
            children = self._children.get(key)
            if children is None:
                children = self._children[key] = (self.counter.labels(*key, "input"),
                                                  self.counter.labels(*key, "output"))
            children[0].inc(usage.input)
            children[1].inc(usage.output)

    def _json_record(self, ex: Exchange, outcome: Outcome) -> None:
        assert self.sink is not None
        entity, usage, principal = ex.entity, outcome.usage, ex.principal
        record: dict[str, Any] = {
            "record": "usage",
            "timestamp": utc_now_ms(),
            "request_id": ex.request_id,
            "endpoint": ex.endpoint.name,
            "served_entity": entity.name if entity is not None else None,
            "provider": entity.spec.external_model.provider if entity is not None else None,
            "model": entity.spec.external_model.name if entity is not None else None,
            "principal": principal.name if principal is not None else "anonymous",
            "principal_type": principal.kind if principal is not None else "anonymous",
            "api": ex.api,
            "stream": outcome.stream,
            "status": outcome.status,
            "error_code": outcome.error.error_code if outcome.error is not None else None,
            "input_tokens": usage.input if usage is not None else None,
            "output_tokens": usage.output if usage is not None else None,
            "total_tokens": usage.total if usage is not None else None,
            "tokens_estimated": usage.estimated if usage is not None else False,
            "latency_ms": round(outcome.latency * 1000, 3),
            "client_request_id": ex.client_request_id,
            "usage_context": ex.usage_context,
        }
        self.sink.put(record)
