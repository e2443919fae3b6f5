"""Helpers for the Delta-table tests: an S3-compatible store on loopback (moto's server mode, stoppable and
restartable on the same port: moto keeps its buckets in the process), the storage options for it, and an
independent reader (delta-rs' reader + pyarrow; DuckDB's delta extension needs a download this machine cannot
make, so DuckDB queries run over the tables' Arrow datasets)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import botocore.session
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from moto.server import ThreadedMotoServer

from tests.standins.server import free_port

S3_OPTIONS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_ALLOW_HTTP": "true",
}


class S3Store:
    """moto on 127.0.0.1:<port>; ``stop`` and ``start`` keep the buckets (they live in the process, shared by
    every moto server of it: each store has its own bucket)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.bucket = f"tables-{uuid.uuid4().hex[:12]}"
        self.server: ThreadedMotoServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def options(self) -> dict[str, str]:
        return {**S3_OPTIONS, "AWS_ENDPOINT_URL": self.endpoint}

    def options_file(self, directory: Path) -> Path:
        path = directory / "storage-options.json"
        path.write_text(json.dumps(self.options()))
        return path

    def make_bucket(self) -> None:
        client = botocore.session.get_session().create_client(
            "s3", region_name="us-east-1", endpoint_url=self.endpoint, aws_access_key_id="testing",
            aws_secret_access_key="testing")
        client.create_bucket(Bucket=self.bucket)


@contextmanager
def s3_store() -> Iterator[S3Store]:
    store = S3Store()
    store.start()
    try:
        store.make_bucket()
        yield store
    finally:
        store.stop()


def read_table(uri: str, options: dict[str, str] | None = None) -> list[dict[str, Any]]:
    return DeltaTable(uri, storage_options=options).to_pyarrow_table().to_pylist()  # type: ignore[no-any-return]


def wait_rows(uri: str, count: int, options: dict[str, str] | None = None, timeout: float = 20.0,
              key: str = "databricks_request_id") -> list[dict[str, Any]]:
    """The table's rows once ``count`` distinct ``key`` values are there (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:  # not DeltaTable.is_deltatable: it holds the GIL while it waits for (our in-process) store
            rows = read_table(uri, options)
        except TableNotFoundError:
            rows = []
        if len({r[key] for r in rows}) >= count:
            return rows
        time.sleep(0.1)
    return rows
