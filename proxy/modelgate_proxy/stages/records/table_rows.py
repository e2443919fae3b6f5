"""The three Delta tables' schemas (pyarrow) and how a request's record becomes a row of each, shaped like
Databricks' tables so their documented queries and joins work on ours:

- ``<catalog>.<schema>.<prefix>_payload``: the AI Gateway inference table (``request_date``,
  ``databricks_request_id``, ``client_request_id``, ``request_time``, ``status_code``, ``sampling_fraction``,
  ``execution_duration_ms``, ``request``, ``response``, ``served_entity_id``, ``logging_error_codes``,
  ``requester``);
- ``endpoint_usage``: like ``system.serving.endpoint_usage`` (one row per tracked request);
- ``served_entities``: like ``system.serving.served_entities`` (one row per served entity and configuration).

Differences from Databricks are listed in docs/records.md. Rows are tuples built on the event loop (cheap), in the
order of their table's ``*_FIELDS``, and hold only flat values: times are epoch microseconds (ints, not datetimes),
a payload row's bodies are JSON bytes already (encoded once, with orjson, when the row is made: the request and
answer dicts are released at once, and a tuple of untracked values is untracked by the garbage collector's first
pass over it), so :func:`modelgate_proxy.stages.records.table_schemas.to_table` in the writer's thread only
transposes them into columns. Columns that are the same on every row (``sampling_fraction``, ``account_id``, ...)
or derived (``request_date`` from ``request_time``) are not in the rows. No pyarrow here: a proxy without tables
never loads it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from time import time_ns
from typing import Any

import orjson

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
"""Databricks logs no request or response body over 10 MiB; neither do we."""

_ENTITY_NAMESPACE = uuid.UUID("0b6f8a52-7f1e-4c3c-9c55-6d2f1f1b7a10")


def served_entity_id(endpoint: str, entity: str, spec_json: bytes) -> str:
    """A stable id for one served entity in one configuration: the same spec gives the same id on every replica
    and restart; a changed spec (another model, provider, ...) gives a new one, as a new config version does in
    Databricks. The spec JSON holds ``{{secrets/...}}`` references, never values; only its digest is used."""
    digest = hashlib.sha256(spec_json).hexdigest()
    return str(uuid.uuid5(_ENTITY_NAMESPACE, f"{endpoint}/{entity}/{digest}"))


def endpoint_id(endpoint: str) -> str:
    return str(uuid.uuid5(_ENTITY_NAMESPACE, f"endpoint/{endpoint}"))


PAYLOAD_FIELDS = ("databricks_request_id", "client_request_id", "request_time", "status_code",
                  "execution_duration_ms", "request", "response", "served_entity_id", "logging_error_codes",
                  "requester")
"""A payload row's values, in this order (the table's other columns: :mod:`.table_schemas`)."""
REQUEST, RESPONSE = PAYLOAD_FIELDS.index("request"), PAYLOAD_FIELDS.index("response")

USAGE_FIELDS = ("client_request_id", "databricks_request_id", "requester", "status_code", "request_time",
                "input_token_count", "output_token_count", "input_character_count", "output_character_count",
                "usage_context", "request_streaming", "served_entity_id")

SERVED_ENTITY_FIELDS = ("served_entity_id", "endpoint_name", "endpoint_id", "served_entity_name", "entity_name",
                        "task", "external_model_config", "change_time")

Row = tuple[Any, ...]


def now() -> int:
    """Now, in microseconds since the epoch (UTC): how rows hold times."""
    return time_ns() // 1000


def arrival(latency: float) -> int:
    """When a request that took ``latency`` seconds and ends now arrived (Databricks' ``request_time``), in
    microseconds since the epoch."""
    return time_ns() // 1000 - round(latency * 1_000_000)


def payload_row(*, request_id: str, client_request_id: str | None, time: int, status: int, latency: float,
                request: Any, response: Any, entity_id: str | None, requester: str,
                response_json: bytes | None = None) -> Row:
    """A payload row (:data:`PAYLOAD_FIELDS`); ``request`` and ``response`` (JSON values) become their JSON bytes
    here (``response_json``, when given, is ``response`` encoded already: the answer's bytes as sent), or ``None``
    with ``MAX_REQUEST_SIZE_EXCEEDED`` / ``MAX_RESPONSE_SIZE_EXCEEDED`` in ``logging_error_codes`` when over
    10 MiB (``logging_error_codes`` is a tuple: the row holds no mutable container)."""
    request_json, response_json, codes = bounded_json(request, response, response_json)
    return (request_id, client_request_id, time, status, round(latency * 1000), request_json, response_json,
            entity_id, codes, requester)


def payload_row_bytes(row: Row) -> int:
    """What a payload row holds, roughly, in bytes: its bodies plus a fixed part (the queue's byte bound)."""
    size = ROW_OVERHEAD_BYTES
    for body in (row[REQUEST], row[RESPONSE]):
        if isinstance(body, bytes):
            size += len(body)
    return size


ROW_OVERHEAD_BYTES = 1024
"""A queued row's own objects (the tuple, its strings, the ints), counted once per row."""


def usage_row(*, request_id: str, client_request_id: str | None, time: int, status: int, requester: str,
              input_tokens: int | None, output_tokens: int | None, usage_context: dict[str, Any] | None,
              streaming: bool, entity_id: str | None, input_chars: int | None = None,
              output_chars: int | None = None) -> Row:
    """A usage row (:data:`USAGE_FIELDS`)."""
    context = ([(str(k), v if isinstance(v, str) else orjson.dumps(v).decode()) for k, v in usage_context.items()]
               if usage_context else None)
    return (client_request_id, request_id, requester, status, time, input_tokens, output_tokens, input_chars,
            output_chars, context, streaming, entity_id)


def served_entity_row(*, entity_id: str, endpoint: str, entity: str, provider: str, model: str, task: str,
                      time: int) -> Row:
    """A ``served_entities`` row (:data:`SERVED_ENTITY_FIELDS`)."""
    return (entity_id, endpoint, endpoint_id(endpoint), entity, model, task,
            {"provider": provider, "name": model, "task": task}, time)


def bounded_json(request: Any, response: Any,
                 response_json: bytes | None = None) -> tuple[bytes | None, bytes | None, tuple[str, ...]]:
    """The JSON of a request and its response (``response_json``: the response's, when encoded already), each
    ``None`` when absent or over 10 MiB, and the codes of those over it (``MAX_REQUEST_SIZE_EXCEEDED``,
    ``MAX_RESPONSE_SIZE_EXCEEDED``)."""
    request_json = orjson.dumps(request) if request is not None else None
    if response_json is None and response is not None:
        response_json = orjson.dumps(response)
    codes: tuple[str, ...] = ()
    if request_json is not None and len(request_json) > MAX_PAYLOAD_BYTES:
        request_json, codes = None, ("MAX_REQUEST_SIZE_EXCEEDED",)
    if response_json is not None and len(response_json) > MAX_PAYLOAD_BYTES:
        response_json, codes = None, (*codes, "MAX_RESPONSE_SIZE_EXCEEDED")
    return request_json, response_json, codes


def bounded_bodies(row: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
    """The JSON of ``request`` / ``response`` when at most 10 MiB (:func:`bounded_json`); in place, one over it
    becomes ``None`` with its code added to ``logging_error_codes``."""
    request, response, codes = bounded_json(row["request"], row["response"])
    row["logging_error_codes"].extend(codes)
    for field, data in (("request", request), ("response", response)):
        if data is None:
            row[field] = None
        else:
            yield field, data
