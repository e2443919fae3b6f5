"""Record sinks: JSON lines (usage records, payload logs) written off the event loop.

A request's finisher only appends to a bounded in-memory queue (O(1), never awaits); one writer task per
destination takes what has accumulated and writes it in a worker thread (encoding included), one ``write`` per
batch. A batch gathers for :data:`GATHER_SECONDS` (50 ms) after its first record, or until :data:`GATHER_RECORDS`
wait, whichever comes first: a hand-over to the worker thread costs about as much CPU as tens of records, and
without the wait a batch would hold the one or two records that arrived during the last write. ``stop`` writes
what is queued at once. When the queue is full the record is dropped and counted
(``modelgate_records_dropped_total``): a slow log destination must not slow down or grow the proxy without bound.

Destination ``-`` is the process's standard output (the proxy's own logs go to standard error), anything else a
file opened for appending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import deque
from collections.abc import Callable
from typing import IO, Any

import orjson

log = logging.getLogger("modelgate.records")

STDOUT = "-"
DEFAULT_QUEUE_SIZE = 10_000
GATHER_SECONDS = 0.05
"""How long a batch waits for more records after its first (records are in the log at most this much later)."""
GATHER_RECORDS = 1024
"""A batch of this many records is written without waiting longer."""
Encoder = Callable[[dict[str, Any]], bytes]


def encode_line(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


class RecordSink:
    """One destination. ``put`` may be called before ``start`` (records wait) and after ``stop`` (dropped)."""

    def __init__(self, destination: str, *, max_queue: int = DEFAULT_QUEUE_SIZE,
                 on_drop: Callable[[str], None] | None = None) -> None:
        self.destination = destination
        self.max_queue = max_queue
        self._queue: deque[tuple[dict[str, Any], Encoder]] = deque()
        self._wake = asyncio.Event()
        """Set by the first record after an idle time (and by ``stop``)."""
        self._full = asyncio.Event()
        """Set when a batch should be written without waiting longer (:data:`GATHER_RECORDS` wait, or ``stop``)."""
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._file: IO[bytes] | None = None
        self._on_drop = on_drop
        self.dropped = 0
        self.written = 0

    def put(self, record: dict[str, Any], encoder: Encoder = encode_line) -> None:
        if self._closing or len(self._queue) >= self.max_queue:
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop(str(record.get("record", "")))
            return
        queue = self._queue
        queue.append((record, encoder))
        if len(queue) == 1:
            self._wake.set()
        elif len(queue) == GATHER_RECORDS:
            self._full.set()

    async def start(self) -> None:
        if self._task is not None:
            return
        if self.destination != STDOUT:
            self._file = await asyncio.to_thread(open, self.destination, "ab")
        self._wake, self._full = asyncio.Event(), asyncio.Event()  # bound to the running loop
        if self._queue:
            self._wake.set()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"records:{self.destination}")

    async def stop(self) -> None:
        """Write what is queued, then close."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            self._wake.set()
            self._full.set()
            await task
        if self._file is not None:
            file, self._file = self._file, None
            await asyncio.to_thread(file.close)

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if not self._closing and len(self._queue) < GATHER_RECORDS:
                await self._gather()
            batch = list(self._queue)
            self._queue.clear()
            try:
                await asyncio.to_thread(self._write, batch)
            except Exception:
                log.exception("cannot write records to %s; %d records lost", self.destination, len(batch))
                self.dropped += len(batch)

    async def _gather(self) -> None:
        """Wait :data:`GATHER_SECONDS` for more records, less when the batch fills up or the sink stops."""
        self._full.clear()
        timer = asyncio.get_running_loop().call_later(GATHER_SECONDS, self._full.set)
        try:
            await self._full.wait()
        finally:
            timer.cancel()

    def _write(self, batch: list[tuple[dict[str, Any], Encoder]]) -> None:
        lines = []
        for record, encoder in batch:
            try:
                lines.append(encoder(record))
            except Exception:
                log.exception("cannot encode a %s record", record.get("record"))
        data = b"".join(lines)
        if self._file is not None:
            self._file.write(data)
            self._file.flush()
        else:
            out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
            if out is not None:
                out.write(data)
                out.flush()
            else:  # a test's captured stdout
                sys.stdout.write(data.decode())
                sys.stdout.flush()
        self.written += len(lines)


class RecordSinks:
    """The sinks of one app, one per destination, started and stopped with it."""

    def __init__(self, *, max_queue: int = DEFAULT_QUEUE_SIZE, on_drop: Callable[[str], None] | None = None) -> None:
        self._sinks: dict[str, RecordSink] = {}
        self._max_queue, self._on_drop = max_queue, on_drop

    def get(self, destination: str) -> RecordSink:
        sink = self._sinks.get(destination)
        if sink is None:
            sink = self._sinks[destination] = RecordSink(destination, max_queue=self._max_queue,
                                                         on_drop=self._on_drop)
        return sink

    async def start(self) -> None:
        for sink in self._sinks.values():
            await sink.start()

    async def stop(self) -> None:
        for sink in self._sinks.values():
            with contextlib.suppress(Exception):
                await sink.stop()
