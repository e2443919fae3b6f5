"""Payload logging (``aiGateway.inferenceTableConfig.enabled``): one JSON record per request, ``"record":
"payload"``, with the request and the response bodies, to the payload sink (standard output unless
``--payload-log FILE``).

Columns follow Databricks' inference tables where they have a name there (``client_request_id``,
``status_code``, ``execution_duration_ms``, ``requester``, ``request``, ``response``, ``logging_error_codes``),
plus ``request_id`` (the ``x-request-id`` answered), and the table the record is meant for:
``catalog_name``, ``schema_name``, ``table_name_prefix`` (default the endpoint name) and ``table``
(``<catalog>.<schema>.<prefix>_payload``), so a log shipper can route it.

The request is the body sent to the provider (after input-guardrail masking; ``model`` and ``extra_params``
folded as the proxy does); a request refused by a PII guardrail is logged masked. A streamed answer is logged
aggregated into one answer (text and tool calls); an error answer is logged in the caller's error shape. A
request or response body over 10 MiB is not logged: it is ``null`` and ``logging_error_codes`` says
``MAX_REQUEST_SIZE_EXCEEDED`` / ``MAX_RESPONSE_SIZE_EXCEEDED``. Encoding happens in the sink's writer thread.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import orjson

from ...error_shapes import error_payload
from ...exchange import Exchange, Next, Outcome, Result
from ...spec.gateway import InferenceTableConfig
from .sinks import RecordSink
from .table_rows import arrival, bounded_bodies, payload_row
from .tables import EndpointTables
from .timestamps import utc_now_ms


def encode_payload_record(record: dict[str, Any]) -> bytes:
    """Encode, leaving out a request or response whose JSON is over 10 MiB (:func:`.table_rows.bounded_bodies`)."""
    for field, data in bounded_bodies(record):
        record[field] = orjson.Fragment(data)
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


class PayloadLog:
    __slots__ = ("catalog", "prefix", "schema", "sink", "table", "tables")

    @staticmethod
    def table_name(endpoint: str, config: InferenceTableConfig) -> str:
        return f"{config.catalog_name}.{config.schema_name}.{config.table_name_prefix or endpoint}_payload"

    def __init__(self, endpoint: str, config: InferenceTableConfig, sink: RecordSink | None,
                 tables: EndpointTables | None = None) -> None:
        self.sink, self.tables = sink, tables
        self.catalog, self.schema = config.catalog_name, config.schema_name
        self.prefix = config.table_name_prefix or endpoint
        self.table = self.table_name(endpoint, config)

    def __call__(self, ex: Exchange, call_next: Next) -> Awaitable[Result]:
        # not a coroutine: the stage only registers its finisher (exchange.Stage)
        ex.ensure_request_id()
        ex.on_finish(self.record)
        return call_next(ex)

    def record(self, ex: Exchange, outcome: Outcome) -> None:
        response: Any = outcome.body
        if response is None and outcome.error is not None:
            response = error_payload(ex.api, outcome.error)
        principal = ex.principal
        requester = principal.name if principal is not None else "anonymous"
        tables = self.tables
        if tables is not None and tables.payload is not None:
            entity = ex.entity.name if ex.entity is not None else None
            tables.payload.put(payload_row(
                request_id=ex.ensure_request_id(), client_request_id=ex.client_request_id, time=arrival(outcome.latency),
                status=outcome.status, latency=outcome.latency, request=ex.payload, response=response,
                response_json=outcome.body_json if response is outcome.body else None,  # the bytes sent: not again
                entity_id=tables.entity_ids.get(entity) if entity is not None else None, requester=requester))
        if self.sink is None:
            return
        record: dict[str, Any] = {
            "record": "payload",
            "timestamp": utc_now_ms(),
            "request_id": ex.request_id,
            "client_request_id": ex.client_request_id,
            "endpoint": ex.endpoint.name,
            "catalog_name": self.catalog,
            "schema_name": self.schema,
            "table_name_prefix": self.prefix,
            "table": self.table,
            "served_entity": ex.entity.name if ex.entity is not None else None,
            "status_code": outcome.status,
            "execution_duration_ms": round(outcome.latency * 1000, 3),
            "requester": requester,
            "api": ex.api,
            "stream": outcome.stream,
            "request": ex.payload,
            "response": response,
            "stream_error": (error_payload(ex.api, outcome.error)
                             if outcome.stream == "failed" and outcome.error is not None else None),
            "usage_context": ex.usage_context,
            "guardrails": [{"direction": d.direction, "guardrail": d.guardrail, "decision": d.decision,
                            "detail": list(d.detail)} for d in ex.guardrail_decisions or ()],
            "logging_error_codes": [],
        }
        self.sink.put(record, encode_payload_record)
