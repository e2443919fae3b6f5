"""The Delta tables of one app (``--table-root``): one :class:`~.table_sink.TableSink` per table, started and
stopped with the app, and the per-endpoint view the record stages use (:class:`EndpointTables`).

Table names, as in Databricks: the payload table ``<catalogName>.<schemaName>.<tableNamePrefix>_payload``
(prefix default: the endpoint name); usage ``system.serving.endpoint_usage`` and ``system.serving.served_entities``
(the names Databricks' system tables have), each mapped to ``<root>/<catalog>/<schema>/<table>``.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterable
from dataclasses import dataclass

from ...spec import ServedEntity
from .table_rows import now, served_entity_id, served_entity_row
from .table_sink import DropCounter, TableKind, TableSettings, TableSink
from .table_store import TableStore

USAGE_TABLE = "system.serving.endpoint_usage"
SERVED_ENTITIES_TABLE = "system.serving.served_entities"


@dataclass(frozen=True, slots=True)
class EndpointTables:
    """What one endpoint's record stages write to: the tables (``None`` when off) and its entities' ids."""

    payload: TableSink | None
    usage: TableSink | None
    entity_ids: dict[str, str]


class Tables:
    def __init__(self, store: TableStore, settings: TableSettings, on_drop: DropCounter | None = None) -> None:
        self.store, self.settings, self._on_drop = store, settings, on_drop
        # pyarrow and delta-rs now, at start-up, not at the first commit: what their imports make then lives
        # among the objects the app freezes out of the garbage collector's sight (server.app, gc.freeze); and
        # pyarrow's first encode (its kernels set up, ~70 ms) before the first request, not in the first batch
        importlib.import_module("deltalake")
        importlib.import_module(".table_schemas", __package__).warm_up()
        self._sinks: dict[str, TableSink] = {}

    def sink(self, full_name: str, kind: TableKind, merge_key: str | None = None) -> TableSink:
        sink = self._sinks.get(full_name)
        if sink is None:
            sink = self._sinks[full_name] = TableSink(
                full_name, self.store.location(full_name), kind, self.settings, self.store.options(),
                self._on_drop, merge_key)
        return sink

    def for_endpoint(self, endpoint: str, entities: Iterable[ServedEntity], *, usage: bool,
                     payload_table: str | None) -> EndpointTables:
        """The endpoint's tables; with usage tracking on, its served entities are queued for
        ``served_entities`` (merged on ``served_entity_id``: one row per entity and configuration)."""
        ids: dict[str, str] = {}
        served = self.sink(SERVED_ENTITIES_TABLE, "served_entities", "served_entity_id") if usage else None
        for entity in entities:
            name = entity.effective_name
            model = entity.external_model
            ids[name] = served_entity_id(endpoint, name, entity.model_dump_json(by_alias=True).encode())
            if served is not None:
                served.put(served_entity_row(entity_id=ids[name], endpoint=endpoint, entity=name,
                                             provider=model.provider, model=model.name, task=model.task,
                                             time=now()))
        return EndpointTables(
            payload=self.sink(payload_table, "payload") if payload_table is not None else None,
            usage=self.sink(USAGE_TABLE, "usage") if usage else None,
            entity_ids=ids,
        )

    def problems(self) -> list[str]:
        return [p for sink in self._sinks.values() for p in sink.problems()]

    async def start(self) -> None:
        for sink in self._sinks.values():
            await sink.start()

    async def stop(self) -> None:
        """Flush every table at once (each within ``flush_seconds``)."""
        await asyncio.gather(*(sink.stop() for sink in self._sinks.values()), return_exceptions=True)
