"""The tables' spill directory (``--table-spill-dir``, docs/records.md): batches that cannot be committed go to
disk, are replayed when the store is back (by the next process, after a restart during an outage), and only
past the byte bound are they dropped, counted by reason."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from modelgate_proxy.stages.records.table_rows import Row, now, usage_row
from modelgate_proxy.stages.records.table_sink import TableSettings, TableSink
from modelgate_proxy.stages.records.table_store import TableStore
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.server import free_port, serve_app

from .harness import endpoint, openai_entity, write_secret
from .serve_process import wait_until_answering
from .tables_support import read_table, s3_store, wait_rows

ROOT = Path(__file__).resolve().parents[2]
RECORDS = {"usageTrackingConfig": {"enabled": True},
           "inferenceTableConfig": {"enabled": True, "catalogName": "ml", "schemaName": "gw"}}
PAYLOAD, USAGE = "ml.gw.chat_payload", "system.serving.endpoint_usage"


def row(request_id: str) -> Row:
    return usage_row(request_id=request_id, client_request_id=None, time=now(), status=200, requester="x",
                     input_tokens=1, output_tokens=2, usage_context=None, streaming=False, entity_id=None)


def settings(spill: Path, spill_bytes: int = 1 << 30, buffer_bytes: int = 64 << 20) -> TableSettings:
    return TableSettings(batch_rows=10, batch_seconds=0.05, retry_min_seconds=0.05, retry_max_seconds=0.1,
                         flush_seconds=2, spill_dir=str(spill), spill_bytes=spill_bytes, buffer_bytes=buffer_bytes)


def test_failed_batches_are_spilled_and_replayed_by_the_next_sink(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")  # a table under a regular file can never be written
    spill, good = tmp_path / "spill", str(tmp_path / "lake" / "usage")
    ids = [f"r{i}" for i in range(45)]

    async def outage() -> tuple[TableSink, list[str]]:
        # a 1-byte memory buffer: past it batches go to disk, not away
        sink = TableSink("system.serving.endpoint_usage", str(blocker / "t"), "usage",
                         settings(spill, buffer_bytes=1), None)
        await sink.start()
        for request_id in ids:
            sink.put(row(request_id))
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.5)
        problems = sink.problems()
        await sink.stop()  # the store is still down: what waits goes to disk, nothing is dropped
        return sink, problems

    first, problems = asyncio.run(outage())
    assert first.written == 0
    assert first.dropped == {}
    assert first.spilled_rows == len(ids)
    assert any("rows spilled to disk" in p for p in problems)
    files = list((spill / "system.serving.endpoint_usage").glob("*.arrow"))
    assert files
    assert sum(int(f.stem.split("-")[1]) for f in files) == len(ids)

    async def back() -> TableSink:
        sink = TableSink("system.serving.endpoint_usage", good, "usage", settings(spill), None)
        await sink.start()
        deadline = time.monotonic() + 20
        while sink.spilled_rows and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await sink.stop()
        return sink

    second = asyncio.run(back())
    assert second.written == len(ids)
    assert second.dropped == {}
    assert sorted(r["databricks_request_id"] for r in read_table(good)) == sorted(ids)
    assert list((spill / "system.serving.endpoint_usage").glob("*.arrow")) == []


def test_past_the_spill_bound_the_oldest_batches_are_dropped_and_counted(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    counted: dict[tuple[str, str], int] = {}

    def on_drop(table: str, reason: str, rows: int) -> None:
        counted[(table, reason)] = counted.get((table, reason), 0) + rows

    async def main() -> tuple[TableSink, list[str]]:
        # one 10-row batch is a few KiB on disk: a 12 KiB bound keeps a couple of them
        sink = TableSink("t", str(blocker / "t"), "usage", settings(tmp_path / "spill", 12 * 1024), None, on_drop)
        await sink.start()
        for i in range(200):
            sink.put(row(f"r{i}"))
            if i % 10 == 9:
                await asyncio.sleep(0.15)
        problems = sink.problems()
        await sink.stop()
        return sink, problems

    sink, problems = asyncio.run(main())
    assert sink.dropped.get("spill_full", 0) > 0
    assert 0 < sink.spilled_rows < 200
    assert sink.spilled_rows + sum(sink.dropped.values()) == 200  # every row accounted for
    assert counted == {("t", reason): rows for reason, rows in sink.dropped.items()}
    assert any("rows dropped (spill_full)" in p for p in problems)
    on_disk = sum(f.stat().st_size for f in (tmp_path / "spill" / "t").glob("*.arrow"))
    assert on_disk <= 12 * 1024


def serve(tmp_path: Path, port: int, extra: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "proxy")}
    return subprocess.Popen(
        [sys.executable, "-m", "modelgate_proxy", "serve", "-f", str(tmp_path / "endpoint.yaml"), "--secrets-dir",
         str(tmp_path / "secrets"), "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-auth", *extra],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_restart_during_an_outage_loses_nothing(tmp_path: Path) -> None:
    """The S3 store goes down, requests keep coming, the proxy is stopped (SIGTERM) while the store is still down
    and started again after it is back: every request id of both runs is in both tables."""
    standin = OpenAIStandIn(api_key="sk-spill")
    with serve_app(standin.app) as url, s3_store() as s3:
        (tmp_path / "endpoint.yaml").write_text(yaml.safe_dump(endpoint("chat", [openai_entity(url)],
                                                                        ai_gateway=RECORDS)))
        write_secret(tmp_path / "secrets", "openai", "api-key", "sk-spill")
        root = f"s3://{s3.bucket}/lake"
        store = TableStore(root, s3.options())
        extra = ["--table-root", root, "--table-storage-options", str(s3.options_file(tmp_path)),
                 "--table-batch-seconds", "0.5", "--table-retry-max-seconds", "1", "--table-flush-seconds", "5",
                 "--table-spill-dir", str(tmp_path / "spill")]
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        ids: list[str] = []
        proc = serve(tmp_path, port, extra)
        try:
            wait_until_answering(proc, base)
            with httpx.Client(base_url=base, timeout=10) as client:
                def ask(text: str) -> None:
                    r = client.post("/serving-endpoints/chat/invocations",
                                    json={"messages": [{"role": "user", "content": text}]})
                    assert r.status_code == 200
                    ids.append(r.headers["x-request-id"])

                ask("before")
                assert wait_rows(store.location(PAYLOAD), 1, store.options())
                s3.stop()
                for i in range(20):
                    ask(f"during {i}")
                    time.sleep(0.1)
                # a failed commit or two puts the batches on disk; the first failure takes object_store's own
                # connection retries (a few seconds), so wait for it rather than for a fixed time
                warnings: list[str] = []
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    warnings = httpx.get(f"{base}/readyz").json().get("warnings", [])
                    if any("spilled to disk" in w for w in warnings):
                        break
                    time.sleep(0.2)
            assert any("spilled to disk" in w for w in warnings), warnings
            assert any("cannot write" in w for w in warnings), warnings
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert list((tmp_path / "spill").rglob("*.arrow")), "nothing was spilled"
        s3.start()
        proc = serve(tmp_path, port, extra)  # the next start replays the spill directory
        try:
            wait_until_answering(proc, base)
            payload = wait_rows(store.location(PAYLOAD), len(ids), store.options(), timeout=30)
            usage = wait_rows(store.location(USAGE), len(ids), store.options(), timeout=10)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    assert len(ids) == 21
    assert {r["databricks_request_id"] for r in payload} == set(ids)
    assert {r["databricks_request_id"] for r in usage} == set(ids)
    assert not list((tmp_path / "spill").rglob("*.arrow"))


def test_the_spill_directory_is_refused_with_several_workers(tmp_path: Path) -> None:
    from modelgate_proxy.cli import build_parser
    from modelgate_proxy.cli.manifests import ConfigError
    from modelgate_proxy.cli.serve import uvicorn_config

    (tmp_path / "endpoint.yaml").write_text(yaml.safe_dump(endpoint("chat", [openai_entity("http://127.0.0.1:9")],
                                                                    ai_gateway=RECORDS)))
    args = build_parser().parse_args(["serve", "-f", str(tmp_path / "endpoint.yaml"), "--workers", "2",
                                      "--table-root", str(tmp_path / "lake"), "--table-spill-dir",
                                      str(tmp_path / "spill")])
    with pytest.raises(ConfigError, match="--table-spill-dir is for one process"):
        uvicorn_config(args)
