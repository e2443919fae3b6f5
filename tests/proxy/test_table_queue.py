"""A table's queue (docs/records.md, "Delivery"): payload rows hold their bodies as JSON bytes (no reference to the
request's objects), the queue is bounded in bytes as well as in rows, and a sink that keeps its table between
commits still sees another writer's commits (every row once)."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

import pytest

from modelgate_proxy.stages.records.table_rows import (
    MAX_PAYLOAD_BYTES,
    PAYLOAD_FIELDS,
    REQUEST,
    RESPONSE,
    ROW_OVERHEAD_BYTES,
    Row,
    now,
    payload_row,
    payload_row_bytes,
)
from modelgate_proxy.stages.records.table_sink import TableSettings, TableSink

from .tables_support import read_table


def prow(request_id: str, request: object, response: object = None) -> Row:
    return payload_row(request_id=request_id, client_request_id=None, time=now(), status=200, latency=0.01,
                       request=request, response=response, entity_id=None, requester="x")


def test_a_payload_row_holds_json_bytes_and_nothing_the_collector_walks() -> None:
    body = {"messages": [{"role": "user", "content": "hi"}]}
    row = prow("r1", body, {"choices": [{"message": {"content": "hello"}}]})
    fields = dict(zip(PAYLOAD_FIELDS, row, strict=True))
    assert fields["request"] == b'{"messages":[{"role":"user","content":"hi"}]}'
    assert fields["response"] == b'{"choices":[{"message":{"content":"hello"}}]}'
    assert fields["logging_error_codes"] == ()
    assert isinstance(fields["request_time"], int)  # epoch microseconds: no datetime object per row
    gc.collect()  # a tuple is untracked by the collector's first pass when it holds only untracked values
    assert not gc.is_tracked(row)  # flat values only: a queue of rows adds nothing to later collections
    body["messages"] = []  # the request's own objects may change later: the row does not
    assert row[REQUEST] == b'{"messages":[{"role":"user","content":"hi"}]}'
    assert payload_row_bytes(row) == ROW_OVERHEAD_BYTES + len(row[REQUEST]) + len(row[RESPONSE])

    big = dict(zip(PAYLOAD_FIELDS, prow("r2", {"input": "x" * MAX_PAYLOAD_BYTES}, {"ok": True}), strict=True))
    assert big["request"] is None
    assert big["response"] == b'{"ok":true}'
    assert big["logging_error_codes"] == ("MAX_REQUEST_SIZE_EXCEEDED",)


def test_past_the_queue_byte_bound_rows_are_dropped_and_the_rest_written(tmp_path: Path) -> None:
    text = "y" * 10_000
    size = payload_row_bytes(prow("probe", {"input": text}))
    uri = str(tmp_path / "payload")

    async def main() -> TableSink:
        settings = TableSettings(batch_rows=1000, batch_seconds=30, max_queue_bytes=3 * size + size // 2)
        sink = TableSink("t", uri, "payload", settings, None)
        for i in range(5):  # before start: every row waits in the queue
            sink.put(prow(f"r{i}", {"input": text}))
        await sink.start()
        await sink.stop()
        return sink

    sink = asyncio.run(main())
    assert sink.dropped == {"queue_full": 2}
    assert sink.written == 3
    rows = read_table(uri)
    assert sorted(r["databricks_request_id"] for r in rows) == ["r0", "r1", "r2"]
    assert all(r["request"] == '{"input":"' + text + '"}' for r in rows)


def test_a_sink_keeping_its_table_sees_the_other_writer_s_commits(tmp_path: Path) -> None:
    uri = str(tmp_path / "payload")

    async def main() -> tuple[TableSink, TableSink]:
        settings = TableSettings(batch_rows=2, batch_seconds=30)
        a, b = TableSink("a", uri, "payload", settings, None), TableSink("b", uri, "payload", settings, None)
        await a.start()
        await b.start()
        for round_ in range(3):  # a, b, a, b, ...: each commit of a follows one of b its table has not seen
            for sink in (a, b):
                for i in range(2):
                    sink.put(prow(f"{sink.name}-{round_}-{i}", {"n": i}))
                for _ in range(200):
                    if sink.written == 2 * (round_ + 1):
                        break
                    await asyncio.sleep(0.02)
        await a.stop()
        await b.stop()
        return a, b

    a, b = asyncio.run(main())
    assert (a.written, b.written) == (6, 6)
    ids = [r["databricks_request_id"] for r in read_table(uri)]
    assert len(ids) == 12
    assert len(set(ids)) == 12


def test_rows_arriving_while_a_batch_is_encoded_wait_for_the_next_commit(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests keep coming while the writer encodes: those rows wait for the next wake-up. Taking them in the same
    pass chained one small encode (a worker-thread round trip holding the GIL) after another for as long as the
    load lasted; under load that was ~100 encodes of ~100 rows per table every 10 s instead of one."""
    from modelgate_proxy.stages.records import table_sink

    sink = TableSink("t", str(tmp_path / "payload"), "payload", TableSettings(batch_rows=1000, batch_seconds=30), None)
    encoded: list[int] = []
    real = table_sink._encode

    def encode_while_rows_arrive(rows: list[Row], kind: table_sink.TableKind) -> Any:
        encoded.append(len(rows))
        if len(encoded) < 50:
            for i in range(3):  # three requests answered during this encode
                sink.put(prow(f"late-{len(encoded)}-{i}", {"n": i}))
        return real(rows, kind)

    monkeypatch.setattr(table_sink, "_encode", encode_while_rows_arrive)

    async def main() -> None:
        for i in range(10):
            sink.put(prow(f"r{i}", {"n": i}))
        await sink._take_queue()

    asyncio.run(main())
    assert encoded == [10]  # one encode of what waited, not one more per arrival
    assert len(sink._queue) == 3  # the late rows wait in the queue, none lost
    assert sum(t.num_rows for t in sink._pending) == 10


def test_a_batch_is_encoded_in_slices_and_a_failed_slice_loses_only_its_rows(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch is turned into Arrow columns ``encode_slice_rows`` at a time, one worker-thread call each (each
    conversion holds the GIL for a slice, not through a whole batch), into one table whose
    rows are the batch's, in order, committed as one; a slice that cannot be encoded is dropped and counted alone."""
    from modelgate_proxy.stages.records import table_sink

    sink = TableSink("t", str(tmp_path / "payload"), "payload",
                     TableSettings(batch_rows=10_000, batch_seconds=30, encode_slice_rows=1000), None)
    calls: list[tuple[str, int]] = []
    real = table_sink._encode

    def encode(rows: list[Row], kind: table_sink.TableKind) -> Any:
        calls.append((rows[0][0], len(rows)))
        if rows[0][0] == "bad-0":
            raise ValueError("not encodable")
        return real(rows, kind)

    monkeypatch.setattr(table_sink, "_encode", encode)

    async def main() -> None:
        for i in range(2500):
            sink.put(prow(f"r{i}", {"n": i}))
        await sink._take_queue()
        [table] = sink._pending  # one batch of three chunks, the rows in order
        assert table.column("databricks_request_id").num_chunks == 3
        assert table.column("databricks_request_id").to_pylist() == [f"r{i}" for i in range(2500)]
        assert await sink._commit()
        for i in range(1200):
            sink.put(prow(f"bad-{i}" if i < 1000 else f"ok-{i}", {"n": i}))
        await sink._take_queue()
        assert await sink._commit()

    asyncio.run(main())
    assert calls == [("r0", 1000), ("r1000", 1000), ("r2000", 500), ("bad-0", 1000), ("ok-1000", 200)]
    ids = [r["databricks_request_id"] for r in read_table(str(tmp_path / "payload"))]
    assert sorted(ids) == sorted([f"r{i}" for i in range(2500)] + [f"ok-{i}" for i in range(1000, 1200)])
    assert sink.dropped == {"encode_error": 1000}
    assert sink.written == 2700
