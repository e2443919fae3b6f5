"""One table's bounded local spill directory (``--table-spill-dir``, ``--table-spill-mb``): batches that could
not be committed, kept on disk until the store is back, and replayed by the next process when this one could
not (a restart during an outage).

A batch is one Arrow IPC file ``<dir>/<table>/<sequence>-<rows>.arrow``, written to a ``.tmp`` name and renamed
(a crash never leaves half a batch under a replayable name). Files are replayed oldest first and deleted only
after their commit succeeded (a crash between the two replays the batch again: at least once). Past the byte
bound the oldest files are dropped, and reported to the caller (who counts them, reason ``spill_full``).
One process per directory: replicas each need their own (a pod's ``emptyDir``).

All methods block (file I/O): :class:`~.table_sink.TableSink` calls them in a worker thread.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("modelgate.records")

_NAME = re.compile(r"^(\d{20})-(\d+)\.arrow$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True, slots=True)
class Spilled:
    path: Path
    rows: int
    size: int


class SpillDir:
    def __init__(self, root: str, table: str, max_bytes: int) -> None:
        self.path = Path(root) / _UNSAFE.sub("_", table)
        self.max_bytes = max_bytes
        self._files: list[Spilled] = []
        self._seq = 0
        self._loaded = False

    @property
    def files(self) -> list[Spilled]:
        return list(self._files)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self._files)

    @property
    def size(self) -> int:
        return sum(f.size for f in self._files)

    def load(self) -> int:
        """Find the batches an earlier process left (once); returns their rows."""
        if self._loaded:
            return self.rows
        self._loaded = True
        self.path.mkdir(parents=True, exist_ok=True)
        for leftover in self.path.glob("*.tmp"):
            leftover.unlink(missing_ok=True)
        found = []
        for entry in self.path.iterdir():
            match = _NAME.match(entry.name)
            if match:
                found.append((int(match.group(1)), Spilled(entry, int(match.group(2)), entry.stat().st_size)))
        found.sort(key=lambda item: item[0])
        self._files = [spilled for _, spilled in found]
        self._seq = max([seq for seq, _ in found], default=0)
        if self._files:
            log.warning("table spill %s: %d rows from an earlier run to replay", self.path, self.rows)
        return self.rows

    def write(self, table: pa.Table) -> int:
        """Keep ``table`` on disk; returns the rows of the oldest batches dropped to stay within the bound."""
        import pyarrow as pa

        self.load()
        self._seq = max(self._seq + 1, time.time_ns())
        final = self.path / f"{self._seq:020d}-{table.num_rows}.arrow"
        tmp = final.with_name(final.name + ".tmp")
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        tmp.rename(final)
        self._files.append(Spilled(final, int(table.num_rows), final.stat().st_size))
        dropped = 0
        while self.size > self.max_bytes and self._files:
            oldest = self._files.pop(0)
            oldest.path.unlink(missing_ok=True)
            dropped += oldest.rows
        return dropped

    def oldest(self, max_bytes: int) -> tuple[list[Spilled], pa.Table | None, int]:
        """The oldest batches, together at most ``max_bytes`` on disk (at least one), read back as one table,
        and the rows of unreadable files (deleted; the caller counts them)."""
        import pyarrow as pa

        self.load()
        taken: list[Spilled] = []
        tables: list[pa.Table] = []
        size = unreadable = 0
        for spilled in list(self._files):
            if taken and size + spilled.size > max_bytes:
                break
            try:
                with pa.OSFile(str(spilled.path), "rb") as source:
                    tables.append(pa.ipc.open_file(source).read_all())
            except (OSError, pa.ArrowException) as exc:
                log.error("table spill %s: cannot read %s, %d rows dropped: %s", self.path, spilled.path.name,
                          spilled.rows, exc)
                self.discard(spilled)
                unreadable += spilled.rows
                continue
            taken.append(spilled)
            size += spilled.size
        if not taken:
            return [], None, unreadable
        return taken, pa.concat_tables(tables) if len(tables) > 1 else tables[0], unreadable

    def done(self, batches: list[Spilled]) -> None:
        """``batches`` are committed: delete them."""
        for spilled in batches:
            spilled.path.unlink(missing_ok=True)
        committed = {spilled.path for spilled in batches}
        self._files = [f for f in self._files if f.path not in committed]

    def discard(self, spilled: Spilled) -> None:
        """A batch that cannot be read (a corrupt file): delete it (the caller counts its rows)."""
        spilled.path.unlink(missing_ok=True)
        self._files = [f for f in self._files if f.path != spilled.path]
