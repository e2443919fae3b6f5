"""One Delta table written in the background: never in the request path, no silent loss.

``put`` (called by a request's finisher on the event loop) only appends a row (a tuple) to a deque, bounded in rows
(``max_queue``) and in bytes (``max_queue_bytes``, the bodies a payload row holds). One task per table wakes when
``batch_rows`` rows (or half of ``max_queue_bytes``) wait or ``batch_seconds`` passed, turns what waits into an
Arrow table (in worker-thread calls of ``encode_slice_rows`` rows each: pyarrow holds the GIL while it converts,
and a whole batch at once kept the event loop waiting 10-30 ms) and commits it with delta-rs
(``write_deltalake``, append) in a worker thread: delta-rs calls block
(they release the GIL while they write), so they never run on the loop. The sink keeps its ``DeltaTable`` between
commits, so a commit reads only the log entries written since the last one (not the whole log from the last
checkpoint). A failed commit (store slow, down, a commit conflict) keeps the batch and retries with
exponential backoff (``retry_min_seconds`` doubling to ``retry_max_seconds``); batches that wait meanwhile are
kept in memory up to ``buffer_bytes`` (Arrow bytes). With a spill directory (``spill_dir``), a batch whose commit
failed goes to disk instead (:mod:`.table_spill`, bounded by ``spill_bytes``), as does what is unwritten at
``stop``; spilled batches are committed first when the store is back, by this process or the next one. Only past
the bounds are batches dropped (the oldest), counted (reasons ``buffer_full``, ``spill_full``) and reported by
:meth:`TableSink.problems` (``/readyz``). Other reasons: ``queue_full`` (more than ``max_queue`` rows or
``max_queue_bytes`` arrived between two wake-ups), ``encode_error``, ``spill_error`` (a spill file that cannot be read back),
``shutdown`` (rows still unwritten, and not spilled, when ``stop`` ran out of ``flush_seconds``), ``closed`` (a
row after ``stop``).

Delivery promise: a row is committed within ``batch_seconds`` plus the time the store is unavailable, at least
once per request id (a commit whose answer is lost is retried and may land twice: deduplicate on
``databricks_request_id``), as long as the buffer bound holds and the process gets ``flush_seconds`` to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .table_rows import Row, payload_row_bytes
from .table_spill import SpillDir

if TYPE_CHECKING:
    import pyarrow as pa

TableKind = Literal["payload", "usage", "served_entities"]

log = logging.getLogger("modelgate.records")

SLOW_COMMIT_SECONDS = 10.0
"""A commit running longer is reported in /readyz (delta-rs' object store retries a store that is down itself)."""

DropCounter = Callable[[str, str, int], None]
"""(table, reason, rows)"""


@dataclass(frozen=True, slots=True)
class TableSettings:
    batch_rows: int = 10_000
    """Commit as soon as this many rows wait (a commit costs milliseconds and adds a file: not too many)."""
    batch_seconds: float = 10.0
    """Commit what waits at least this often."""
    encode_slice_rows: int = 1000
    """Rows turned into Arrow columns per worker-thread call: a batch is encoded in slices (one Arrow table of
    several chunks), each conversion holding the GIL for a slice (1-2 ms of CPU), not for a whole batch. A whole
    10,000-row batch in one call held it for 10-70 ms while the event loop waited; in-process the loop's longest
    wait went from 19-49 ms to 8-20 ms with slices (bench/RESULTS.md, run T: not down to a slice's time)."""
    buffer_bytes: int = 64 * 1024 * 1024
    """Arrow bytes kept per table while the store fails; past it the oldest batch is dropped."""
    max_queue: int = 100_000
    """Rows waiting for the writer task to pick them up."""
    max_queue_bytes: int = 64 * 1024 * 1024
    """Bytes of rows (:func:`.table_rows.payload_row_bytes`) waiting for the writer task to pick them up."""
    retry_min_seconds: float = 0.5
    retry_max_seconds: float = 30.0
    flush_seconds: float = 20.0
    """How long ``stop`` (SIGTERM) keeps trying to commit what waits (the pod's grace period is 30 s)."""
    spill_dir: str | None = None
    """Where batches that could not be committed wait on disk (one subdirectory per table); ``None``: memory only."""
    spill_bytes: int = 1024 * 1024 * 1024
    """Bytes of spilled batches kept per table; past it the oldest are dropped."""


class TableSink:
    """One Delta table. ``put`` may be called before ``start`` (rows wait) and after ``stop`` (dropped)."""

    def __init__(self, name: str, uri: str, kind: TableKind, settings: TableSettings,
                 storage_options: dict[str, str] | None, on_drop: DropCounter | None = None,
                 merge_key: str | None = None) -> None:
        self.name, self.uri, self.kind, self.settings = name, uri, kind, settings
        self._options, self._on_drop, self._merge_key = storage_options, on_drop, merge_key
        self._queue: deque[Row] = deque()
        self._queue_bytes = 0
        self._sized = kind == "payload"  # usage and entity rows are small and of one size: counted as rows only
        self._table: Any = None  # the DeltaTable of the last successful append (a worker thread's)
        self._pending: deque[pa.Table] = deque()  # encoded batches, oldest first
        self._pending_bytes = 0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.written = 0
        self.dropped: dict[str, int] = {}
        self.failing_since: float | None = None
        self.commit_started: float | None = None
        self.last_error: str | None = None
        self._spill = SpillDir(settings.spill_dir, name, settings.spill_bytes) if settings.spill_dir else None
        self.spilled_rows = 0

    # --- the request path -------------------------------------------------------------------------------------
    def put(self, row: Row) -> None:
        if self._closing:
            self._drop("closed", 1)
            return
        settings = self.settings
        if len(self._queue) >= settings.max_queue:
            self._drop("queue_full", 1)
            return
        if self._sized:
            size = payload_row_bytes(row)
            if self._queue_bytes + size > settings.max_queue_bytes and self._queue:
                self._drop("queue_full", 1)
                return
            self._queue_bytes += size
            if self._queue_bytes * 2 >= settings.max_queue_bytes:
                self._wake.set()
        self._queue.append(row)
        if len(self._queue) >= settings.batch_rows:
            self._wake.set()

    # --- lifecycle ----------------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._wake, self._stopping = asyncio.Event(), asyncio.Event()
            if self._spill is not None:
                try:
                    self.spilled_rows = await asyncio.to_thread(self._spill.load)
                except OSError as exc:
                    log.error("table %s: spill directory unusable, keeping batches in memory: %s", self.name, exc)
                    self._spill = None
            if self._queue or self.spilled_rows:
                self._wake.set()
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"table:{self.name}")

    async def stop(self) -> None:
        """Commit what waits (for up to ``flush_seconds``), then drop and count the rest."""
        self._closing = True
        task, self._task = self._task, None
        if task is None:
            return
        self._wake.set()
        self._stopping.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, self.settings.flush_seconds)
        if self._spill is not None and (self._queue or self._pending):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._take_queue(), self.settings.flush_seconds)
            await self._spill_pending()
            if self.spilled_rows:
                log.warning("table %s: %d rows left in the spill directory for the next start", self.name,
                            self.spilled_rows)
        rows = len(self._queue) + sum(t.num_rows for t in self._pending)
        if rows:
            log.error("table %s: %d rows not written before shutdown (%s)", self.name, rows, self.last_error)
            self._queue.clear()
            self._queue_bytes = 0
            self._pending.clear()
            self._drop("shutdown", rows)

    @property
    def buffered_rows(self) -> int:
        return len(self._queue) + sum(int(t.num_rows) for t in self._pending) + self.spilled_rows

    def problems(self) -> list[str]:
        out = []
        if self.spilled_rows:
            out.append(f"table {self.name}: {self.spilled_rows} rows spilled to disk, waiting for the store")
        started = self.commit_started
        if started is not None and time.monotonic() - started > SLOW_COMMIT_SECONDS:
            out.append(f"table {self.name}: a commit has been waiting for the store for "
                       f"{time.monotonic() - started:.0f} s ({self.buffered_rows} rows buffered)")
        if self.failing_since is not None:
            out.append(f"table {self.name}: cannot write for {time.monotonic() - self.failing_since:.0f} s "
                       f"({self.buffered_rows} rows buffered): {self.last_error}")
        for reason, rows in sorted(self.dropped.items()):
            out.append(f"table {self.name}: {rows} rows dropped ({reason})")
        return out

    # --- the writer -------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        delay = self.settings.retry_min_seconds
        failed = more = False
        while True:
            if not self._closing and not more:
                # a full batch cuts the batch wait short, not the backoff (only stop does)
                event = self._stopping if failed else self._wake
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), delay if failed else self.settings.batch_seconds)
            self._wake.clear()
            await self._take_queue()
            more = False
            if not self._pending and not self.spilled_rows:
                if self._closing:
                    return
                continue
            if await (self._replay() if self.spilled_rows else self._commit()):
                delay, failed = self.settings.retry_min_seconds, False
                more = bool(self._pending or self.spilled_rows)
            else:
                if failed:
                    delay = min(delay * 2, self.settings.retry_max_seconds)
                failed = True
                await self._spill_pending()
                if self._closing and self._spill is not None and not self._pending and not self._queue:
                    return  # everything is on disk: the next start replays it

    async def _take_queue(self) -> None:
        """Encode the rows waiting now, in batches of at most ``batch_rows``. Not the rows that arrive while it
        encodes: they wait for the next wake-up (taking them too chained small encodes, each a worker-thread
        round trip holding the GIL, for as long as requests kept coming)."""
        waiting = len(self._queue)
        while waiting and self._queue:
            waiting -= min(waiting, self.settings.batch_rows)
            if len(self._queue) <= self.settings.batch_rows:  # the usual case: all of it, at C speed
                rows = list(self._queue)
                self._queue.clear()
                self._queue_bytes = 0
            else:
                rows = [self._queue.popleft() for _ in range(self.settings.batch_rows)]
                if self._sized:
                    self._queue_bytes = max(0, self._queue_bytes - sum(map(payload_row_bytes, rows)))
            table = await self._encode(rows)
            if table is None:
                continue
            self._pending.append(table)
            self._pending_bytes += table.nbytes
        while self._pending_bytes > self.settings.buffer_bytes and len(self._pending) > 1:
            if self._spill is not None and await self._spill_oldest():
                continue  # over the memory bound: to disk, not dropped
            oldest = self._pending.popleft()
            self._pending_bytes -= oldest.nbytes
            log.error("table %s: buffer over %d bytes, %d rows dropped", self.name, self.settings.buffer_bytes,
                      oldest.num_rows)
            self._drop("buffer_full", oldest.num_rows)

    async def _encode(self, rows: list[Row]) -> pa.Table | None:
        """The rows as one Arrow table, encoded ``encode_slice_rows`` at a time, each slice in its own worker-thread
        call (between two, the thread waits for the loop and holds no GIL); a slice that cannot be encoded is
        dropped and counted (``encode_error``), the others are kept. ``None`` when nothing could be."""
        step = max(1, self.settings.encode_slice_rows)
        parts = []
        for start in range(0, len(rows), step):
            part = rows[start:start + step] if len(rows) > step else rows
            try:
                parts.append(await asyncio.to_thread(_encode, part, self.kind))
            except Exception as exc:
                log.error("table %s: cannot encode %d rows: %s", self.name, len(part), exc)
                self._drop("encode_error", len(part))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else _concat(parts)

    async def _commit(self) -> bool:
        batch = list(self._pending)
        if not await self._attempt(batch):
            return False
        for _ in batch:
            done = self._pending.popleft()
            self._pending_bytes -= done.nbytes
        return True

    async def _replay(self) -> bool:
        """Commit the oldest spilled batches (at most ``buffer_bytes`` of them at once)."""
        spill = self._spill
        assert spill is not None
        try:
            files, table, unreadable = await asyncio.to_thread(spill.oldest, self.settings.buffer_bytes)
        except OSError as exc:
            self.last_error = f"spill directory: {exc}"
            return False
        if unreadable:
            self._drop("spill_error", unreadable)
        if table is None or not await self._attempt([table]):
            self.spilled_rows = spill.rows
            return table is None
        await asyncio.to_thread(spill.done, files)
        self.spilled_rows = spill.rows
        return True

    async def _spill_pending(self) -> None:
        """Move the in-memory batches to the spill directory (after a failed commit, and at ``stop``)."""
        while self._pending and await self._spill_oldest():
            pass

    async def _spill_oldest(self) -> bool:
        """The oldest in-memory batch to the spill directory; ``False`` when it cannot be (it stays in memory)."""
        spill = self._spill
        if spill is None or not self._pending:
            return False
        table = self._pending[0]
        try:
            dropped = await asyncio.to_thread(spill.write, table)
        except Exception as exc:
            log.error("table %s: cannot spill %d rows, keeping them in memory: %s", self.name, table.num_rows, exc)
            return False
        self._pending.popleft()
        self._pending_bytes -= table.nbytes
        if dropped:
            log.error("table %s: spill directory over %d bytes, %d rows dropped", self.name,
                      self.settings.spill_bytes, dropped)
            self._drop("spill_full", dropped)
        self.spilled_rows = spill.rows
        return True

    async def _attempt(self, batch: list[pa.Table]) -> bool:
        self.commit_started = time.monotonic()
        try:
            rows = await asyncio.to_thread(self._write, batch)
        except Exception as exc:
            self.commit_started = None
            self.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
            if self.failing_since is None:
                self.failing_since = time.monotonic()
                log.warning("table %s: cannot write, retrying: %s", self.name, self.last_error)
            return False
        self.commit_started = None
        self.written += rows
        if self.failing_since is not None:
            log.info("table %s: writing again after %.0f s", self.name, time.monotonic() - self.failing_since)
        self.failing_since, self.last_error = None, None
        return True

    def _write(self, batch: list[pa.Table]) -> int:
        """One commit of every waiting batch (a worker thread); returns the rows written."""
        import pyarrow as pa
        from deltalake import DeltaTable, write_deltalake
        from deltalake.exceptions import TableNotFoundError

        table = pa.concat_tables(batch) if len(batch) > 1 else batch[0]
        existing = None
        if self._merge_key is not None:
            # not DeltaTable.is_deltatable: it holds the GIL while it waits for the store
            with contextlib.suppress(TableNotFoundError):
                existing = DeltaTable(self.uri, storage_options=self._options)
        if existing is not None and self._merge_key is not None:
            key = self._merge_key
            (existing
             .merge(table, predicate=f"t.{key} = s.{key}", source_alias="s", target_alias="t")
             .when_not_matched_insert_all()
             .execute())
        else:
            # the table of the last append: delta-rs reads only the log entries written since (another writer's
            # too) and resolves a concurrent append itself; after a failure the table is opened afresh
            target, self._table = self._table, None
            if target is None:
                with contextlib.suppress(TableNotFoundError):
                    target = DeltaTable(self.uri, storage_options=self._options)
            if target is None:
                write_deltalake(self.uri, table, mode="append", storage_options=self._options)
            else:
                write_deltalake(target, table, mode="append")
                self._table = target
        return int(table.num_rows)

    def _drop(self, reason: str, rows: int) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + rows
        if self._on_drop is not None:
            self._on_drop(self.name, reason, rows)


def _encode(rows: list[Row], kind: TableKind) -> pa.Table:
    from .table_schemas import to_table

    return to_table(rows, kind)


def _concat(parts: list[pa.Table]) -> pa.Table:
    """The slices of one batch as one table of several chunks (no copy: microseconds, on the loop)."""
    import pyarrow as pa

    return pa.concat_tables(parts)
