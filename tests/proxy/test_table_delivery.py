"""The tables' delivery promise (docs/records.md): the S3 store stopped for 30 s and restarted -> every request id
arrives; SIGTERM during load -> every answered request is in the tables; two writers on one table (local and
S3) -> no lost or broken commit; past the buffer bound rows are dropped, counted by reason, and reported."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import yaml

from modelgate_proxy.stages.records.table_sink import TableSettings, TableSink
from modelgate_proxy.stages.records.table_store import TableStore
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.server import free_port, serve_app

from .conftest import FAKE_KEY
from .harness import endpoint, openai_entity, run_proxy, write_secret
from .serve_process import wait_until_answering
from .tables_support import read_table, s3_store, wait_rows

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {"openai": {"api-key": FAKE_KEY}}
RECORDS = {"usageTrackingConfig": {"enabled": True},
           "inferenceTableConfig": {"enabled": True, "catalogName": "ml", "schemaName": "gw"}}
PAYLOAD, USAGE = "ml.gw.chat_payload", "system.serving.endpoint_usage"


def ask(url: str, text: str) -> str:
    r = httpx.post(f"{url}/serving-endpoints/chat/invocations", timeout=10,
                   json={"messages": [{"role": "user", "content": text}]})
    assert r.status_code == 200
    return r.headers["x-request-id"]


def test_store_down_for_30_seconds(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    _, url = openai_standin
    manifest = endpoint("chat", [openai_entity(url)], ai_gateway=RECORDS)
    with s3_store() as s3:
        root = f"s3://{s3.bucket}/lake"
        store = TableStore(root, s3.options())
        extra = ["--table-root", root, "--table-storage-options", str(s3.options_file(tmp_path)),
                 "--table-batch-seconds", "0.5", "--table-retry-max-seconds", "2"]
        with run_proxy(tmp_path, [manifest], secrets=SECRETS, extra=extra) as proxy:
            ids = [ask(proxy.url, f"before {i}") for i in range(3)]
            first = wait_rows(store.location(PAYLOAD), 3, store.options())
            assert {r["databricks_request_id"] for r in first} == set(ids)
            s3.stop()
            outage_ends = time.monotonic() + 30
            warned = []
            while time.monotonic() < outage_ends:
                ids.append(ask(proxy.url, f"during {len(ids)}"))
                ready = httpx.get(f"{proxy.url}/readyz").json()
                assert ready["status"] == "ready"  # losing the store is not a reason to stop serving
                warned += [w for w in ready.get("warnings", []) if PAYLOAD in w]
                time.sleep(0.5)
            assert warned, "the outage was not reported in /readyz"
            s3.start()
            payload = wait_rows(store.location(PAYLOAD), len(ids), store.options(), timeout=30)
            usage = wait_rows(store.location(USAGE), len(ids), store.options(), timeout=10)
            sinks = proxy.state.services.tables
            assert sinks is not None
            problems = sinks.problems()
    assert len(ids) > 40
    assert {r["databricks_request_id"] for r in payload} == set(ids)
    assert {r["databricks_request_id"] for r in usage} == set(ids)
    assert problems == []  # recovered, nothing dropped


def test_sigterm_during_load_loses_nothing(tmp_path: Path) -> None:
    standin = OpenAIStandIn(api_key="sk-proc")
    with serve_app(standin.app) as url:
        path = tmp_path / "endpoint.yaml"
        path.write_text(yaml.safe_dump(endpoint("chat", [openai_entity(url)], ai_gateway=RECORDS)))
        write_secret(tmp_path / "secrets", "openai", "api-key", "sk-proc")
        port, root = free_port(), tmp_path / "lake"
        env = {**os.environ, "PYTHONPATH": str(ROOT / "proxy")}
        proc = subprocess.Popen(  # batches of 60 s: without the flush on SIGTERM nothing would be written
            [sys.executable, "-m", "modelgate_proxy", "serve", "-f", str(path), "--secrets-dir",
             str(tmp_path / "secrets"), "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
             "--no-auth", "--table-root", str(root), "--table-batch-seconds", "60"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_answering(proc, base)
            answered: list[str] = []
            lock = threading.Lock()

            def load(n: int) -> None:
                with httpx.Client(base_url=base, timeout=10) as client:
                    for i in range(10_000):
                        try:
                            r = client.post("/serving-endpoints/chat/invocations",
                                            json={"messages": [{"role": "user", "content": f"load {n} {i}"}]})
                        except httpx.TransportError:
                            return  # the proxy stopped accepting
                        if r.status_code == 200:
                            with lock:
                                answered.append(r.headers["x-request-id"])

            threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
            for t in threads:
                t.start()
            time.sleep(1.5)
            proc.send_signal(signal.SIGTERM)
            for t in threads:
                t.join(timeout=30)
            rc = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert rc in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after its graceful shutdown
    assert len(answered) > 20
    store = TableStore(str(root))
    for table in (PAYLOAD, USAGE):
        written = {r["databricks_request_id"] for r in read_table(store.location(table))}
        assert set(answered) <= written


def write_concurrently(uri: str, options: dict[str, str] | None, writers: int = 2, commits: int = 8,
                       rows: int = 5) -> list[str]:
    """``writers`` sinks in their own threads and loops, each making ``commits`` commits of ``rows`` rows."""
    from modelgate_proxy.stages.records.table_rows import now, usage_row

    ids: list[str] = []
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        async def main() -> None:
            sink = TableSink(f"writer-{w}", uri, "usage", TableSettings(batch_rows=rows, batch_seconds=30,
                                                                         retry_min_seconds=0.05), options)
            await sink.start()
            for c in range(commits):
                for r in range(rows):
                    request_id = f"w{w}-c{c}-r{r}"
                    ids.append(request_id)
                    sink.put(usage_row(request_id=request_id, client_request_id=None, time=now(), status=200,
                                       requester="load", input_tokens=1, output_tokens=1, usage_context=None,
                                       streaming=False, entity_id=None))
                while sink.buffered_rows:
                    await asyncio.sleep(0.01)
            await sink.stop()
            assert sink.dropped == {}
            assert sink.written == commits * rows

        try:
            asyncio.run(main())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    return ids


def check_concurrent(uri: str, options: dict[str, str] | None, ids: list[str]) -> None:
    from deltalake import DeltaTable

    rows = read_table(uri, options)
    assert sorted(r["databricks_request_id"] for r in rows) == sorted(ids)  # each row once: no lost commit
    table = DeltaTable(uri, storage_options=options)
    # (not table.history(): it holds the GIL while it waits for the store, and our store runs in this process)
    assert 2 <= table.version() + 1 <= len(ids) // 5  # the two first commits may meet at the table's creation


def test_two_writers_on_a_local_table(tmp_path: Path) -> None:
    uri = str(tmp_path / "lake" / "system" / "serving" / "endpoint_usage")
    check_concurrent(uri, None, write_concurrently(uri, None))


def test_two_writers_on_an_s3_table() -> None:
    with s3_store() as s3:
        uri = f"s3://{s3.bucket}/lake/system/serving/endpoint_usage"
        check_concurrent(uri, s3.options(), write_concurrently(uri, s3.options()))


def test_past_the_buffer_bound_rows_are_dropped_and_counted(tmp_path: Path) -> None:
    from modelgate_proxy.stages.records.table_rows import now, usage_row

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")  # a table under a regular file can never be written
    counted: dict[tuple[str, str], int] = {}

    def on_drop(table: str, reason: str, rows: int) -> None:
        counted[(table, reason)] = counted.get((table, reason), 0) + rows

    async def main() -> tuple[TableSink, list[str]]:
        settings = TableSettings(batch_rows=10, batch_seconds=0.05, buffer_bytes=1, retry_min_seconds=0.05,
                                 retry_max_seconds=0.1, flush_seconds=0.3)
        sink = TableSink("t", str(blocker / "table"), "usage", settings, None, on_drop)
        await sink.start()
        for i in range(50):
            sink.put(usage_row(request_id=f"r{i}", client_request_id=None, time=now(), status=200, requester="x",
                               input_tokens=1, output_tokens=1, usage_context=None, streaming=False, entity_id=None))
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        problems = sink.problems()
        await sink.stop()
        sink.put(("late",))
        return sink, problems

    sink, problems = asyncio.run(main())
    assert sink.written == 0
    assert sink.dropped["buffer_full"] > 0
    assert sink.dropped["shutdown"] > 0
    assert sink.dropped["closed"] == 1
    assert sum(sink.dropped.values()) == 51  # every row accounted for
    assert counted == {("t", reason): rows for reason, rows in sink.dropped.items()}
    assert any("cannot write" in p for p in problems)
    assert any("rows dropped (buffer_full)" in p for p in problems)


def test_two_proxy_processes_on_one_s3_table_root(tmp_path: Path) -> None:
    """Two replicas (two ``serve`` processes) writing the same payload and usage tables on S3 under load: every
    answered request id is there exactly once, in both tables."""
    standin = OpenAIStandIn(api_key="sk-replicas")
    with serve_app(standin.app) as url, s3_store() as s3:
        path = tmp_path / "endpoint.yaml"
        path.write_text(yaml.safe_dump(endpoint("chat", [openai_entity(url)], ai_gateway=RECORDS)))
        write_secret(tmp_path / "secrets", "openai", "api-key", "sk-replicas")
        root = f"s3://{s3.bucket}/lake"
        store = TableStore(root, s3.options())
        env = {**os.environ, "PYTHONPATH": str(ROOT / "proxy")}
        ports = [free_port(), free_port()]
        procs = [subprocess.Popen(
            [sys.executable, "-m", "modelgate_proxy", "serve", "-f", str(path), "--secrets-dir",
             str(tmp_path / "secrets"), "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
             "--no-auth", "--table-root", root, "--table-storage-options", str(s3.options_file(tmp_path)),
             "--table-batch-rows", "5", "--table-batch-seconds", "0.3"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for port in ports]
        answered: list[str] = []
        try:
            for proc, port in zip(procs, ports, strict=True):
                wait_until_answering(proc, f"http://127.0.0.1:{port}")

            def load(port: int) -> None:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                    for i in range(40):
                        r = client.post("/serving-endpoints/chat/invocations",
                                        json={"messages": [{"role": "user", "content": f"replica {port} {i}"}]})
                        assert r.status_code == 200
                        answered.append(r.headers["x-request-id"])

            threads = [threading.Thread(target=load, args=(port,)) for port in ports]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            payload = wait_rows(store.location(PAYLOAD), len(answered), store.options(), timeout=30)
            usage = wait_rows(store.location(USAGE), len(answered), store.options(), timeout=10)
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    assert len(answered) == 80
    for rows in (payload, usage):
        assert sorted(r["databricks_request_id"] for r in rows) == sorted(answered)  # each once: no lost commit
