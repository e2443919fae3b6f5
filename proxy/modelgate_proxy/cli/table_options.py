"""``modelgate serve``'s Delta-table options (docs/records.md): their arguments, their settings entries (handed
to worker processes as JSON), and the :class:`~modelgate_proxy.stages.records.table_sink.TableSettings` and
:class:`~modelgate_proxy.stages.records.table_store.TableStore` they make."""

from __future__ import annotations

import argparse
from typing import Any

from ..stages.records.table_sink import TableSettings
from ..stages.records.table_store import StoreConfigError, TableStore, load_store
from .manifests import ConfigError

USAGE = """[--table-root ROOT] [--table-storage-options FILE] [--table-batch-rows N]
                    [--table-batch-seconds S] [--table-buffer-mb N] [--table-flush-seconds S]
                    [--table-retry-max-seconds S] [--table-spill-dir DIR] [--table-spill-mb N]"""


def add_table_arguments(serve: argparse.ArgumentParser) -> None:
    tables = serve.add_argument_group("Delta tables", "payload and usage tables (docs/records.md)")
    tables.add_argument("--table-root", default=None, metavar="ROOT",
                        help="where the Delta tables live: a directory, or s3://, gs://, abfss:// URI")
    tables.add_argument("--table-storage-options", default=None, metavar="FILE",
                        help="JSON or YAML mapping of delta-rs storage options (credentials, endpoint)")
    tables.add_argument("--table-batch-rows", type=int, default=10_000, metavar="N",
                        help="commit as soon as N rows wait (default 10000)")
    tables.add_argument("--table-batch-seconds", type=float, default=10.0, metavar="S",
                        help="commit what waits at least every S seconds (default 10)")
    tables.add_argument("--table-buffer-mb", type=int, default=64, metavar="N",
                        help="MiB of rows kept per table while the store fails (default 64)")
    tables.add_argument("--table-flush-seconds", type=float, default=20.0, metavar="S",
                        help="how long shutdown keeps committing what waits (default 20)")
    tables.add_argument("--table-retry-max-seconds", type=float, default=30.0, metavar="S",
                        help="longest wait between two attempts while the store fails (default 30)")
    tables.add_argument("--table-spill-dir", default=None, metavar="DIR",
                        help="keep batches that could not be written on disk here, replayed when the store is back "
                             "(also after a restart; one process per directory); default: memory only")
    tables.add_argument("--table-spill-mb", type=int, default=1024, metavar="N",
                        help="MiB of spilled batches kept per table (default 1024); past it the oldest are dropped")


def table_arguments(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "table_root": args.table_root,
        "table_storage_options": args.table_storage_options,
        "table_batch_rows": args.table_batch_rows,
        "table_batch_seconds": args.table_batch_seconds,
        "table_buffer_mb": args.table_buffer_mb,
        "table_flush_seconds": args.table_flush_seconds,
        "table_retry_max_seconds": args.table_retry_max_seconds,
        "table_spill_dir": args.table_spill_dir,
        "table_spill_mb": args.table_spill_mb,
    }


def table_settings(settings: dict[str, Any]) -> tuple[TableStore | None, TableSettings]:
    """The Delta tables' root, store options and batching; raises :class:`ConfigError` when unusable."""
    defaults = TableSettings()
    rows = int(settings.get("table_batch_rows") or defaults.batch_rows)
    seconds = float(settings.get("table_batch_seconds") or defaults.batch_seconds)
    buffer_mb = int(settings.get("table_buffer_mb") or defaults.buffer_bytes // (1024 * 1024))
    flush = float(settings.get("table_flush_seconds") or defaults.flush_seconds)
    retry = float(settings.get("table_retry_max_seconds") or defaults.retry_max_seconds)
    spill_mb = int(settings.get("table_spill_mb") or defaults.spill_bytes // (1024 * 1024))
    if rows < 1 or seconds <= 0 or buffer_mb < 1 or flush <= 0 or retry <= 0 or spill_mb < 1:
        raise ConfigError("--table-batch-rows, --table-batch-seconds, --table-buffer-mb, --table-flush-seconds, "
                          "--table-retry-max-seconds and --table-spill-mb must be positive")
    tables = TableSettings(batch_rows=rows, batch_seconds=seconds, buffer_bytes=buffer_mb * 1024 * 1024,
                           flush_seconds=flush, retry_max_seconds=retry,
                           retry_min_seconds=min(defaults.retry_min_seconds, retry),
                           spill_dir=settings.get("table_spill_dir") or None, spill_bytes=spill_mb * 1024 * 1024)
    root = settings.get("table_root")
    if not root:
        if settings.get("table_storage_options"):
            raise ConfigError("--table-storage-options needs --table-root")
        return None, tables
    try:
        return load_store(root, settings.get("table_storage_options")), tables
    except StoreConfigError as exc:
        raise ConfigError(str(exc)) from None
