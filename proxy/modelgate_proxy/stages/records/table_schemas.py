"""The Arrow schemas of the three Delta tables (columns: :mod:`.table_rows`, docs/records.md) and the batch
encoder. Loaded only when ``--table-root`` is set (pyarrow is a heavy import)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from .table_rows import (
    PAYLOAD_FIELDS,
    SERVED_ENTITY_FIELDS,
    USAGE_FIELDS,
    Row,
    now,
    payload_row,
    served_entity_row,
    usage_row,
)

_TS = pa.timestamp("us", tz="UTC")

PAYLOAD_SCHEMA = pa.schema([
    ("request_date", pa.date32()),
    ("databricks_request_id", pa.string()),
    ("client_request_id", pa.string()),
    ("request_time", _TS),
    ("status_code", pa.int32()),
    ("sampling_fraction", pa.float64()),
    ("execution_duration_ms", pa.int64()),
    ("request", pa.string()),
    ("response", pa.string()),
    ("served_entity_id", pa.string()),
    ("logging_error_codes", pa.list_(pa.string())),
    ("requester", pa.string()),
])

USAGE_SCHEMA = pa.schema([
    ("account_id", pa.string()),
    ("workspace_id", pa.string()),
    ("client_request_id", pa.string()),
    ("databricks_request_id", pa.string()),
    ("requester", pa.string()),
    ("status_code", pa.int32()),
    ("request_time", _TS),
    ("input_token_count", pa.int64()),
    ("output_token_count", pa.int64()),
    ("input_character_count", pa.int64()),
    ("output_character_count", pa.int64()),
    ("usage_context", pa.map_(pa.string(), pa.string())),
    ("request_streaming", pa.bool_()),
    ("served_entity_id", pa.string()),
])

EXTERNAL_MODEL_CONFIG = pa.struct([("provider", pa.string()), ("name", pa.string()), ("task", pa.string())])

SERVED_ENTITIES_SCHEMA = pa.schema([
    ("served_entity_id", pa.string()),
    ("account_id", pa.string()),
    ("workspace_id", pa.string()),
    ("created_by", pa.string()),
    ("endpoint_name", pa.string()),
    ("endpoint_id", pa.string()),
    ("served_entity_name", pa.string()),
    ("entity_type", pa.string()),
    ("entity_name", pa.string()),
    ("entity_version", pa.string()),
    ("endpoint_config_version", pa.int32()),
    ("task", pa.string()),
    ("external_model_config", EXTERNAL_MODEL_CONFIG),
    ("change_time", _TS),
    ("endpoint_delete_time", _TS),
])

SCHEMAS = {"payload": PAYLOAD_SCHEMA, "usage": USAGE_SCHEMA, "served_entities": SERVED_ENTITIES_SCHEMA}
ROW_FIELDS = {"payload": PAYLOAD_FIELDS, "usage": USAGE_FIELDS, "served_entities": SERVED_ENTITY_FIELDS}

CONSTANTS: dict[str, Any] = {"sampling_fraction": 1.0, "entity_type": "EXTERNAL_MODEL"}
"""Columns not in the rows: the same value on every row (the others not in a row are null)."""


def to_table(rows: Sequence[Row], kind: str) -> pa.Table:
    """The rows (tuples in the order of ``ROW_FIELDS[kind]``) as one Arrow table: transposed into columns at C speed
    (``zip``), each column converted in one call; times (epoch microseconds) become UTC timestamps, and
    ``request_date`` their UTC date; columns not in the rows are their constant or null. A payload row's bodies are
    JSON bytes already: the string columns take them as they are, checked as UTF-8 by Arrow."""
    schema = SCHEMAS[kind]
    values = dict(zip(ROW_FIELDS[kind], zip(*rows, strict=True) if rows else ((),) * len(ROW_FIELDS[kind]),
                      strict=True))
    columns: dict[str, pa.Array] = {}
    for f in schema:
        if f.name in values:
            column = values[f.name]
            columns[f.name] = (pa.array(column, pa.int64()).cast(f.type) if f.type == _TS
                               else pa.array(column, f.type))
    arrays = []
    for f in schema:
        if f.name in columns:
            arrays.append(columns[f.name])
        elif f.name == "request_date":
            arrays.append(columns["request_time"].cast(pa.date32()))
        else:
            arrays.append(pa.repeat(pa.scalar(CONSTANTS.get(f.name), f.type), len(rows)))
    return pa.Table.from_arrays(arrays, schema=schema)


def warm_up() -> None:
    """Encode one made-up row of each table, once, at start-up: pyarrow's first conversions and casts of a process
    set up its kernels, ~70 ms holding the GIL, which the first batch would otherwise spend while requests wait."""
    time = now()
    to_table([payload_row(request_id="0" * 32, client_request_id="c", time=time, status=200, latency=0.001,
                          request={"messages": []}, response={"choices": []}, entity_id="e", requester="r")],
             "payload")
    to_table([usage_row(request_id="0" * 32, client_request_id="c", time=time, status=200, requester="r",
                        input_tokens=1, output_tokens=1, usage_context={"k": "v"}, streaming=False, entity_id="e",
                        input_chars=1, output_chars=1)], "usage")
    to_table([served_entity_row(entity_id="e", endpoint="n", entity="n", provider="p", model="m", task="t",
                                time=time)], "served_entities")
