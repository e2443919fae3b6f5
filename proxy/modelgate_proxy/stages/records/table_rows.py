"""The three Delta tables' schemas (pyarrow) and how a request's record becomes a row of each, shaped like
Databricks' tables so their documented queries and joins work on ours:

- ``<catalog>.<schema>.<prefix>_payload``: the AI Gateway inference table (``request_date``,
  ``databricks_request_id``, ``client_request_id``, ``request_time``, ``status_code``, ``sampling_fraction``,
  ``execution_duration_ms``, ``request``, ``response``, ``served_entity_id``, ``logging_error_codes``,
  ``requester``);
- ``endpoint_usage``: like ``system.serving.endpoint_usage`` (one row per tracked request);
- ``served_entities``: like ``system.serving.served_entities`` (one row per served entity and configuration).

Differences from Databricks are listed in docs/records.md. Rows are plain dicts built on the event loop (cheap)
and hold only flat values: a payload row's bodies are JSON bytes already (encoded once, with orjson, when the row
is made: the request and answer dicts are released at once and the queued rows are nothing the garbage collector
walks), so :func:`modelgate_proxy.stages.records.table_schemas.to_table` in the writer's thread only builds
columns. No pyarrow here: a proxy without tables never loads it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from time import time as _clock
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


def now() -> datetime:
    return datetime.now(UTC)


def arrival(latency: float) -> datetime:
    """When a request that took ``latency`` seconds and ends now arrived (Databricks' ``request_time``)."""
    return datetime.fromtimestamp(_clock() - latency, UTC)  # a quarter of now() - timedelta()


def payload_row(*, request_id: str, client_request_id: str | None, time: datetime, status: int, latency: float,
                request: Any, response: Any, entity_id: str | None, requester: str) -> dict[str, Any]:
    """A payload row; ``request`` and ``response`` (JSON values) become their JSON bytes here, or ``None`` with
    ``MAX_REQUEST_SIZE_EXCEEDED`` / ``MAX_RESPONSE_SIZE_EXCEEDED`` in ``logging_error_codes`` when over 10 MiB
    (``logging_error_codes`` is a tuple: the row holds no mutable container)."""
    request_json, response_json, codes = bounded_json(request, response)
    return {  # made after the bodies: a dict of flat values only is one the garbage collector does not track
        "request_date": time.date(), "databricks_request_id": request_id, "client_request_id": client_request_id,
        "request_time": time, "status_code": status, "sampling_fraction": 1.0,
        "execution_duration_ms": round(latency * 1000), "request": request_json, "response": response_json,
        "served_entity_id": entity_id, "logging_error_codes": codes, "requester": requester,
    }


def payload_row_bytes(row: dict[str, Any]) -> int:
    """What a payload row holds, roughly, in bytes: its bodies plus a fixed part (the queue's byte bound)."""
    size = ROW_OVERHEAD_BYTES
    for field in ("request", "response"):
        body = row.get(field)
        if isinstance(body, bytes):
            size += len(body)
    return size


ROW_OVERHEAD_BYTES = 1024
"""A queued row's own objects (the dict, its strings, the datetimes), counted once per row."""


def usage_row(*, request_id: str, client_request_id: str | None, time: datetime, status: int, requester: str,
              input_tokens: int | None, output_tokens: int | None, usage_context: dict[str, Any] | None,
              streaming: bool, entity_id: str | None, input_chars: int | None = None,
              output_chars: int | None = None) -> dict[str, Any]:
    return {
        "account_id": None, "workspace_id": None, "client_request_id": client_request_id,
        "databricks_request_id": request_id, "requester": requester, "status_code": status, "request_time": time,
        "input_token_count": input_tokens, "output_token_count": output_tokens, "input_character_count": input_chars,
        "output_character_count": output_chars,
        "usage_context": ([(str(k), v if isinstance(v, str) else orjson.dumps(v).decode())
                           for k, v in usage_context.items()] if usage_context else None),
        "request_streaming": streaming, "served_entity_id": entity_id,
    }


def served_entity_row(*, entity_id: str, endpoint: str, entity: str, provider: str, model: str, task: str,
                      time: datetime) -> dict[str, Any]:
    return {
        "served_entity_id": entity_id, "account_id": None, "workspace_id": None, "created_by": None,
        "endpoint_name": endpoint, "endpoint_id": endpoint_id(endpoint), "served_entity_name": entity,
        "entity_type": "EXTERNAL_MODEL", "entity_name": model, "entity_version": None,
        "endpoint_config_version": None, "task": task,
        "external_model_config": {"provider": provider, "name": model, "task": task},
        "change_time": time, "endpoint_delete_time": None,
    }


def bounded_json(request: Any, response: Any) -> tuple[bytes | None, bytes | None, tuple[str, ...]]:
    """The JSON of a request and its response, each ``None`` when absent or over 10 MiB, and the codes of those
    over it (``MAX_REQUEST_SIZE_EXCEEDED``, ``MAX_RESPONSE_SIZE_EXCEEDED``)."""
    codes: tuple[str, ...] = ()
    out: list[bytes | None] = []
    for value, code in ((request, "MAX_REQUEST_SIZE_EXCEEDED"), (response, "MAX_RESPONSE_SIZE_EXCEEDED")):
        data = orjson.dumps(value) if value is not None else None
        if data is not None and len(data) > MAX_PAYLOAD_BYTES:
            data, codes = None, (*codes, code)
        out.append(data)
    return out[0], out[1], codes


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
