"""Usage records and payload logs through the real proxy: one record per request, streams counted from the final
usage chunk and aggregated, refusals recorded, no credential in any record."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from modelgate_proxy.stages.records.payload_log import encode_payload_record
from modelgate_proxy.stages.records.sinks import RecordSink
from modelgate_proxy.stages.records.table_rows import MAX_PAYLOAD_BYTES
from tests.standins.openai_api import OpenAIStandIn

from .conftest import FAKE_KEY
from .harness import endpoint, openai_entity, run, run_proxy

SECRETS = {"openai": {"api-key": FAKE_KEY}}
TOOLS = [{"type": "function", "function": {"name": "get_current_weather", "parameters": {"type": "object"}}}]


def read_records(path: Path, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count or time.monotonic() > deadline:
            return [json.loads(line) for line in lines]
        time.sleep(0.02)


def gateway(**extra: Any) -> dict[str, Any]:
    return {"usageTrackingConfig": {"enabled": True},
            "inferenceTableConfig": {"enabled": True, "catalogName": "ml", "schemaName": "gw"}, **extra}


def test_usage_and_payload_records(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    standin, url = openai_standin
    usage_log, payload_log = tmp_path / "usage.jsonl", tmp_path / "payload.jsonl"
    manifest = endpoint("chat", [openai_entity(url, name="primary")], ai_gateway=gateway(
        rateLimits=[{"key": "endpoint", "calls": 4, "renewalPeriod": "minute"}]))
    extra = ["--usage-log", str(usage_log), "--payload-log", str(payload_log)]
    with run_proxy(tmp_path, [manifest], secrets=SECRETS, extra=extra, auth=["--identity-header", "X-Forwarded-Email"]
                   ) as proxy:
        who = {"X-Forwarded-Email": "alice@example.com"}
        r = httpx.post(f"{proxy.url}/serving-endpoints/chat/invocations", headers=who, json={
            "messages": [{"role": "user", "content": "Hello there"}], "client_request_id": "cr-1",
            "usage_context": {"project": "docs"}})
        assert r.status_code == 200
        first_id = r.headers["x-request-id"]
        sent = standin.stats.last["body"]
        assert "client_request_id" not in sent
        assert "usage_context" not in sent
        client = openai.OpenAI(base_url=proxy.base, api_key="caller", max_retries=0, default_headers=who)
        stream = client.chat.completions.create(model="chat", stream=True,
                                                messages=[{"role": "user", "content": "stream me please"}])
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "You said: stream me please"
        tool_stream = client.chat.completions.create(model="chat", stream=True, tools=TOOLS,  # type: ignore[arg-type]
                                                     messages=[{"role": "user", "content": "weather?"}])
        list(tool_stream)
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.RateLimitError) as refused:
            client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
        refused_id = refused.value.response.headers["x-request-id"]
        usage = read_records(usage_log, 5)
        payloads = read_records(payload_log, 5)
        metrics = httpx.get(f"{proxy.url}/metrics").text  # the records are written after the counters moved
    assert [u["record"] for u in usage] == ["usage"] * 5
    assert [p["record"] for p in payloads] == ["payload"] * 5
    u0, us, ut, _u3, u429 = usage
    assert u0["request_id"] == first_id == payloads[0]["request_id"]
    assert (u0["endpoint"], u0["served_entity"], u0["provider"], u0["model"]) == ("chat", "primary", "openai",
                                                                                  "gpt-4o-mini")
    assert (u0["principal"], u0["principal_type"], u0["status"], u0["api"]) == ("alice@example.com", "user", 200,
                                                                                "databricks")
    assert (u0["input_tokens"], u0["output_tokens"], u0["total_tokens"]) == (2, 4, 6)
    assert u0["tokens_estimated"] is False
    assert u0["latency_ms"] > 0
    assert u0["client_request_id"] == "cr-1"
    assert u0["usage_context"] == {"project": "docs"}
    # the stream's tokens come from its final usage chunk
    assert (us["stream"], us["input_tokens"], us["output_tokens"], us["tokens_estimated"]) == ("complete", 3, 5,
                                                                                               False)
    assert ut["output_tokens"] == 17
    assert (u429["status"], u429["error_code"], u429["served_entity"], u429["total_tokens"]) == (
        429, "REQUEST_LIMIT_EXCEEDED", None, None)
    assert u429["request_id"] == refused_id
    assert 'modelgate_usage_tokens_total{endpoint="chat",served_entity="primary",token_type="output"} 29.0' in metrics

    p0, ps, pt, _p3, p429 = payloads
    assert (p0["table"], p0["catalog_name"], p0["schema_name"], p0["table_name_prefix"]) == (
        "ml.gw.chat_payload", "ml", "gw", "chat")
    assert p0["request"]["messages"] == [{"role": "user", "content": "Hello there"}]
    assert p0["response"]["choices"][0]["message"]["content"] == "You said: Hello there"
    assert (p0["status_code"], p0["requester"], p0["client_request_id"]) == (200, "alice@example.com", "cr-1")
    assert p0["logging_error_codes"] == []
    assert ps["response"]["object"] == "chat.completion"  # aggregated
    assert ps["response"]["choices"][0]["message"]["content"] == "You said: stream me please"
    assert ps["response"]["usage"]["total_tokens"] == 8
    call = pt["response"]["choices"][0]["message"]["tool_calls"][0]
    assert call["function"] == {"name": "get_current_weather", "arguments": '{"location": "Boston, MA"}'}
    assert pt["response"]["choices"][0]["finish_reason"] == "tool_calls"
    assert p429["status_code"] == 429
    assert p429["response"]["error"]["code"] == "rate_limit_exceeded"  # the caller's error shape
    for path in (usage_log, payload_log):
        assert FAKE_KEY not in path.read_text()
        assert "caller" not in path.read_text()  # the caller's api key (a header) is never recorded


def test_records_go_to_stdout_by_default(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                         openai_standin: tuple[OpenAIStandIn, str]) -> None:
    _standin, url = openai_standin
    manifest = endpoint("chat", [openai_entity(url)], ai_gateway={"usageTrackingConfig": {"enabled": True}})
    plain = endpoint("plain", [openai_entity(url)])
    with run_proxy(tmp_path, [manifest, plain], secrets=SECRETS) as proxy:
        r = httpx.post(f"{proxy.url}/serving-endpoints/chat/invocations",
                       json={"messages": [{"role": "user", "content": "hi"}]})
        plain_answer = httpx.post(f"{proxy.url}/serving-endpoints/plain/invocations",
                                  json={"messages": [{"role": "user", "content": "hi"}]})
        assert "x-request-id" not in plain_answer.headers  # no aiGateway: no record, no id
        deadline = time.monotonic() + 5
        out = ""
        while '"record":"usage"' not in out and time.monotonic() < deadline:
            time.sleep(0.02)
            out += capfd.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [line["request_id"] for line in lines] == [r.headers["x-request-id"]]
    assert lines[0]["principal"] == "anonymous"


def test_oversized_payloads_are_left_out_and_a_full_queue_drops() -> None:
    big = {"messages": [{"role": "user", "content": "x" * (MAX_PAYLOAD_BYTES + 1)}]}
    record = {"record": "payload", "request": big, "response": {"ok": True}, "logging_error_codes": []}
    line = json.loads(encode_payload_record(record))
    assert line["request"] is None
    assert line["response"] == {"ok": True}
    assert line["logging_error_codes"] == ["MAX_REQUEST_SIZE_EXCEEDED"]

    dropped: list[str] = []
    sink = RecordSink("/dev/null", max_queue=2, on_drop=dropped.append)
    for i in range(3):
        sink.put({"record": "usage", "i": i})
    assert dropped == ["usage"]
    assert sink.dropped == 1

    async def drain() -> int:
        await sink.start()
        await sink.stop()
        return sink.written

    assert run(drain()) == 2
