"""Payload and usage Delta tables written by the real proxy (``modelgate serve --table-root``) to a local path and
to an S3-compatible server on loopback (moto), read back with delta-rs' reader + pyarrow: every column of a plain,
a streamed, an oversized and a refused request; the docs' DuckDB queries over what the tests wrote."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import openai
import orjson
import pytest
from deltalake import DeltaTable

from modelgate_proxy.spec import ServedEntity
from modelgate_proxy.stages.records.table_rows import served_entity_id
from modelgate_proxy.stages.records.table_store import TableStore
from tests.standins.openai_api import OpenAIStandIn

from .conftest import FAKE_KEY
from .harness import endpoint, openai_entity, run_proxy
from .tables_support import read_table, s3_store

SECRETS = {"openai": {"api-key": FAKE_KEY}}
WHO = {"X-Forwarded-Email": "alice@example.com"}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "records.md"
BIG = "x" * (10 * 1024 * 1024 + 10)


def manifest(url: str) -> dict[str, Any]:
    return endpoint("chat", [openai_entity(url, name="primary")], ai_gateway={
        "usageTrackingConfig": {"enabled": True},
        "inferenceTableConfig": {"enabled": True, "catalogName": "ml", "schemaName": "gw"},
        "rateLimits": [{"key": "endpoint", "calls": 3, "renewalPeriod": "minute"}]})


def four_requests(base_url: str, *, oversized: bool = True) -> dict[str, str]:
    """plain, streamed, oversized (or a second plain one), refused: their x-request-id by kind."""
    ids: dict[str, str] = {}
    r = httpx.post(f"{base_url}/serving-endpoints/chat/invocations", headers=WHO, json={
        "messages": [{"role": "user", "content": "Hello there"}], "client_request_id": "cr-1",
        "usage_context": {"project": "docs"}})
    assert r.status_code == 200
    ids["plain"] = r.headers["x-request-id"]
    client = openai.OpenAI(base_url=base_url + "/serving-endpoints", api_key="caller", max_retries=0,
                           default_headers=WHO)
    stream = client.chat.completions.with_raw_response.create(
        model="chat", stream=True, messages=[{"role": "user", "content": "stream me please"}])
    ids["stream"] = stream.headers["x-request-id"]
    assert "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices) == \
        "You said: stream me please"
    content = BIG if oversized else "small"
    r = httpx.post(f"{base_url}/serving-endpoints/chat/invocations", headers=WHO, timeout=60,
                   json={"messages": [{"role": "user", "content": content}]})
    assert r.status_code == 200
    ids["oversized"] = r.headers["x-request-id"]
    r = httpx.post(f"{base_url}/serving-endpoints/chat/invocations", headers=WHO,
                   json={"messages": [{"role": "user", "content": "one too many"}]})
    assert r.status_code == 429
    ids["refused"] = r.headers["x-request-id"]
    return ids


def check_tables(store: TableStore, ids: dict[str, str], started: datetime, *, oversized: bool = True) -> None:
    options = store.options()
    entity = served_entity_id_of(store)
    payload = {r["databricks_request_id"]: r for r in read_table(store.location("ml.gw.chat_payload"), options)}
    usage = {r["databricks_request_id"]: r for r in
             read_table(store.location("system.serving.endpoint_usage"), options)}
    assert set(payload) == set(usage) == set(ids.values())
    ended = datetime.now(UTC)
    for kind, request_id in ids.items():
        p, u = payload[request_id], usage[request_id]
        assert set(p) == {"request_date", "databricks_request_id", "client_request_id", "request_time", "status_code",
                          "sampling_fraction", "execution_duration_ms", "request", "response", "served_entity_id",
                          "logging_error_codes", "requester"}
        assert started - timedelta(seconds=1) <= p["request_time"] <= ended
        assert p["request_date"] == p["request_time"].date()
        assert p["client_request_id"] == ("cr-1" if kind == "plain" else None)
        assert p["status_code"] == (429 if kind == "refused" else 200)
        assert p["sampling_fraction"] == 1.0
        assert isinstance(p["execution_duration_ms"], int)
        assert 0 <= p["execution_duration_ms"] < 60_000
        assert p["requester"] == u["requester"] == "alice@example.com"
        assert p["served_entity_id"] == u["served_entity_id"] == (None if kind == "refused" else entity)
        assert u["account_id"] is None
        assert u["workspace_id"] is None
        assert u["client_request_id"] == p["client_request_id"]
        assert u["status_code"] == p["status_code"]
        assert abs((u["request_time"] - p["request_time"]).total_seconds()) < 1
        texts = {"plain": ("Hello there", "You said: Hello there"),
                 "stream": ("stream me please", "You said: stream me please"),
                 "oversized": (BIG if oversized else "small", "You said: " + (BIG if oversized else "small")),
                 "refused": ("one too many", None)}[kind]
        assert u["input_character_count"] == len(texts[0])  # the text the caller sent (refused or not)
        assert u["output_character_count"] == (len(texts[1]) if texts[1] is not None else None)
        assert u["usage_context"] == ([("project", "docs")] if kind == "plain" else None)
        assert u["request_streaming"] is (kind == "stream")
        response = orjson.loads(p["response"]) if p["response"] is not None else None
        request = orjson.loads(p["request"]) if p["request"] is not None else None
        if kind == "plain":
            assert request["messages"] == [{"role": "user", "content": "Hello there"}]
            assert "client_request_id" not in request
            assert response["choices"][0]["message"]["content"] == "You said: Hello there"
            assert (u["input_token_count"], u["output_token_count"]) == (2, 4)
        elif kind == "stream":
            assert request["messages"] == [{"role": "user", "content": "stream me please"}]
            assert response["choices"][0]["message"]["content"] == "You said: stream me please"
            assert u["input_token_count"] == 3
            assert u["output_token_count"] >= 1
        elif kind == "oversized" and oversized:
            assert p["request"] is None
            assert p["response"] is None
            assert p["logging_error_codes"] == ["MAX_REQUEST_SIZE_EXCEEDED", "MAX_RESPONSE_SIZE_EXCEEDED"]
            assert u["input_token_count"] == 1  # the stand-in counts words
        if kind != "oversized" or not oversized:
            assert p["logging_error_codes"] == []
        if kind == "refused":
            assert request["messages"] == [{"role": "user", "content": "one too many"}]
            assert response["error_code"] == "REQUEST_LIMIT_EXCEEDED"
            assert u["input_token_count"] is None
            assert u["output_token_count"] is None
    served = read_table(store.location("system.serving.served_entities"), options)
    assert len(served) == 1
    s = served[0]
    assert (s["served_entity_id"], s["endpoint_name"], s["served_entity_name"], s["entity_type"],
            s["entity_name"], s["task"]) == (entity, "chat", "primary", "EXTERNAL_MODEL", "gpt-4o-mini", "llm/v1/chat")
    assert s["external_model_config"] == {"provider": "openai", "name": "gpt-4o-mini", "task": "llm/v1/chat"}
    assert s["endpoint_id"]
    assert s["endpoint_delete_time"] is None
    assert started - timedelta(5) < s["change_time"]
    text = repr(payload) + repr(usage) + repr(served)
    assert FAKE_KEY not in text


def served_entity_id_of(store: TableStore) -> str:
    served = read_table(store.location("system.serving.served_entities"), store.options())
    return str(served[0]["served_entity_id"])


TABLE_AUTH = ["--identity-header", "X-Forwarded-Email"]
"""The records name the caller from a trusted header."""


def table_args(root: str, options_file: Path | None = None) -> list[str]:
    args = ["--table-root", root, "--table-batch-seconds", "0.2"]
    return args + (["--table-storage-options", str(options_file)] if options_file is not None else [])


def test_tables_on_a_local_path(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    _, url = openai_standin
    root = tmp_path / "lake"
    started = datetime.now(UTC)
    with run_proxy(tmp_path, [manifest(url)], secrets=SECRETS, extra=table_args(str(root)), auth=TABLE_AUTH) as proxy:
        ids = four_requests(proxy.url)
        assert proxy.state.services.settings.payload_log is None  # tables only: no bodies on standard output
    store = TableStore(str(root))
    check_tables(store, ids, started)
    spec = ServedEntity.model_validate(openai_entity(url, name="primary"))
    assert served_entity_id_of(store) == served_entity_id("chat", "primary", spec.model_dump_json(by_alias=True).encode())
    run_docs_queries(store)


def test_tables_on_s3(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    _, url = openai_standin
    started = datetime.now(UTC)
    with s3_store() as s3:
        root = f"s3://{s3.bucket}/lake"
        extra = table_args(root, s3.options_file(tmp_path))
        with run_proxy(tmp_path, [manifest(url)], secrets=SECRETS, extra=extra, auth=TABLE_AUTH) as proxy:
            ids = four_requests(proxy.url, oversized=False)
        check_tables(TableStore(root, s3.options()), ids, started, oversized=False)


def docs_queries() -> dict[str, str]:
    """The docs' example queries: each ```sql block whose first line is ``-- <title>``."""
    blocks = re.findall(r"```sql\n(.*?)```", DOCS.read_text(), re.S)
    return {b.splitlines()[0].removeprefix("-- ").strip(): b for b in blocks if b.startswith("-- ")}


def run_docs_queries(store: TableStore) -> None:
    queries = docs_queries()
    con = duckdb.connect()
    for view, name in (("payload", "ml.gw.chat_payload"), ("endpoint_usage", "system.serving.endpoint_usage"),
                       ("served_entities", "system.serving.served_entities")):
        con.register(view, DeltaTable(store.location(name)).to_pyarrow_dataset())
    usage = read_table(store.location("system.serving.endpoint_usage"))
    payload = read_table(store.location("ml.gw.chat_payload"))
    rows = con.sql(queries["tokens per requester per day"]).fetchall()
    counted = [u for u in usage if u["input_token_count"] is not None]
    assert rows == [(counted[0]["request_time"].date(), "alice@example.com",
                     sum(u["input_token_count"] for u in counted), sum(u["output_token_count"] for u in counted),
                     sum(u["input_token_count"] + u["output_token_count"] for u in counted), len(usage))]
    rows = con.sql(queries["p95 latency per served entity"]).fetchall()
    durations = sorted(p["execution_duration_ms"] for p in payload if p["served_entity_id"] is not None)
    rank = 0.95 * (len(durations) - 1)
    low = int(rank)
    expected = durations[low] + (durations[min(low + 1, len(durations) - 1)] - durations[low]) * (rank - low)
    assert len(rows) == 1
    assert rows[0][:3] == ("chat", "primary", "gpt-4o-mini")
    assert rows[0][3] == pytest.approx(expected)
    assert rows[0][4] == len(durations)
