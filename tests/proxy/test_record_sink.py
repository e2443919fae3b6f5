"""The JSON-lines record sink gathers records into batches: a record is written within the gathering time, a
batch of GATHER_RECORDS at once, and ``stop`` writes what waits without waiting; a gathering sink stays bounded by
its queue."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from modelgate_proxy.stages.records import sinks
from modelgate_proxy.stages.records.sinks import GATHER_RECORDS, GATHER_SECONDS, RecordSink

from .harness import run


def _lines(path: Path) -> list[dict[str, int]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def _until_written(sink: RecordSink, count: int, timeout: float = 5.0) -> float:
    started = time.monotonic()
    while sink.written < count:
        assert time.monotonic() - started < timeout, f"{sink.written} of {count} records written"
        await asyncio.sleep(0.002)
    return time.monotonic() - started


def test_records_are_gathered_into_one_write_and_written_within_the_gathering_time(tmp_path: Path) -> None:
    path = tmp_path / "usage.jsonl"
    writes: list[int] = []

    async def main() -> float:
        sink = RecordSink(str(path))
        write = sink._write

        def counting(batch: list[tuple[dict[str, object], sinks.Encoder]]) -> None:
            writes.append(len(batch))
            write(batch)

        sink._write = counting  # type: ignore[method-assign]
        await sink.start()
        for i in range(10):  # 10 records 2 ms apart (a write takes less): one batch, not one write each
            sink.put({"record": "usage", "i": i})
            await asyncio.sleep(0.002)
        took = await _until_written(sink, 10)
        await sink.stop()
        return took

    took = run(main())
    assert [r["i"] for r in _lines(path)] == list(range(10))
    assert sum(writes) == 10
    assert len(writes) <= 2, writes  # one, or two on a machine that stalled the loop past the gathering time
    assert took < GATHER_SECONDS + 1.0  # the gathering time, plus room for a busy machine


def test_a_full_batch_is_written_without_waiting_and_stop_writes_at_once(tmp_path: Path) -> None:
    path = tmp_path / "usage.jsonl"

    async def main() -> tuple[float, float]:
        sink = RecordSink(str(path))
        await sink.start()
        old = sinks.GATHER_SECONDS
        sinks.GATHER_SECONDS = 30.0  # a batch that waited for the timer would time the test out
        try:
            for i in range(GATHER_RECORDS):
                sink.put({"record": "usage", "i": i})
            full = await _until_written(sink, GATHER_RECORDS)
            sink.put({"record": "usage", "i": GATHER_RECORDS})
            await asyncio.sleep(0.05)
            assert sink.written == GATHER_RECORDS  # one record waits for the (now 30 s) gathering time ...
            started = time.monotonic()
            await sink.stop()  # ... and stop does not wait for it
            return full, time.monotonic() - started
        finally:
            sinks.GATHER_SECONDS = old

    full, stopped = run(main())
    assert full < 5.0
    assert stopped < 5.0
    assert [r["i"] for r in _lines(path)] == list(range(GATHER_RECORDS + 1))


def test_a_gathering_sink_drops_past_its_queue_bound(tmp_path: Path) -> None:
    dropped: list[str] = []

    async def main() -> tuple[int, int]:
        sink = RecordSink(str(tmp_path / "usage.jsonl"), max_queue=10, on_drop=dropped.append)
        await sink.start()
        for i in range(15):  # all within one gathering time: the queue holds 10
            sink.put({"record": "usage", "i": i})
        await sink.stop()
        return sink.written, sink.dropped

    assert run(main()) == (10, 5)
    assert dropped == ["usage"] * 5
