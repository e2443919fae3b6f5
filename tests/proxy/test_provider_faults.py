"""Provider faults against a fault-injecting stand-in (issue 12, points 3-7): honest streams, no echoed
credential, capped provider messages, defensive header parsing, the answer's shape checked, work that ends."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.standins.faulty_provider import FaultyProvider

from .conftest import FAKE_KEY
from .harness import Proxy, endpoint, openai_entity, run_proxy

MODES_UNDER_TEST = ("ok", "non_sse", "no_terminator", "long_line", "huge", "huge_chunked", "echo_auth",
                    "echo_auth_stream", "big_error", "retry_euro", "retry_ff", "wrong_shape", "wrong_shape_list",
                    "no_choices", "drip", "drip_stream", "slow")
CHAT = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def faulty() -> Iterator[FaultyProvider]:
    with FaultyProvider.running() as fp:
        yield fp


def _manifests(fp: FaultyProvider) -> list[dict[str, Any]]:
    out = []
    for mode in MODES_UNDER_TEST:
        out.append(endpoint(mode.replace("_", "-"), [openai_entity(fp.base(mode))]))
        out.append(endpoint(mode.replace("_", "-") + "-cmpl",
                            [openai_entity(fp.base(mode), task="llm/v1/completions", model="m")]))
        out.append(endpoint(mode.replace("_", "-") + "-emb",
                            [openai_entity(fp.base(mode), task="llm/v1/embeddings", model="m")]))
    return out


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, faulty: FaultyProvider) -> Iterator[Proxy]:
    tmp = tmp_path_factory.mktemp("faults")
    with run_proxy(tmp, _manifests(faulty), secrets={"openai": {"api-key": FAKE_KEY}},
                   extra=["--request-timeout", "4"]) as p:
        yield p


def _invoke(proxy: Proxy, name: str, body: dict[str, Any], timeout: float = 20) -> httpx.Response:
    return httpx.post(f"{proxy.url}/serving-endpoints/{name}/invocations", json=body, timeout=timeout)


def _openai(proxy: Proxy, path: str, body: dict[str, Any], timeout: float = 20) -> httpx.Response:
    return httpx.post(f"{proxy.url}/serving-endpoints/{path}", json=body, timeout=timeout)


def _events(text: str) -> list[str]:
    return [e.removeprefix("data: ") for e in text.split("\n\n") if e.strip()]


def test_the_stand_in_answers_well_in_ok_mode(proxy: Proxy) -> None:
    """The control: the same stand-in, well-behaved, gives 200 answers and a complete stream."""
    assert _invoke(proxy, "ok", {"messages": CHAT}).json()["choices"][0]["message"]["content"] == "hello"
    assert _invoke(proxy, "ok-cmpl", {"prompt": "hi"}).json()["choices"][0]["text"] == "hello"
    assert _invoke(proxy, "ok-emb", {"input": "hi"}).json()["data"][0]["embedding"] == [0.1, 0.2]
    r = _invoke(proxy, "ok", {"messages": CHAT, "stream": True})
    assert r.status_code == 200
    assert r.text.endswith("data: [DONE]\n\n")


# --- point 3: honest streams ---------------------------------------------------------------------------------

def test_non_sse_200_for_a_stream_is_a_502_before_any_byte(proxy: Proxy) -> None:
    r = _invoke(proxy, "non-sse", {"messages": CHAT, "stream": True})
    assert r.status_code == 502, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["error_code"] == "BAD_GATEWAY"
    assert "stream" in body["message"]
    r = _openai(proxy, "chat/completions", {"model": "non-sse", "messages": CHAT, "stream": True})
    assert r.status_code == 502
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}


def test_stream_without_terminator_ends_with_an_error_event_and_no_done(proxy: Proxy) -> None:
    r = _invoke(proxy, "no-terminator", {"messages": CHAT, "stream": True})
    assert r.status_code == 200
    assert "[DONE]" not in r.text
    events = _events(r.text)
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "hello"
    last = orjson.loads(events[-1])
    assert last["error_code"] == "BAD_GATEWAY"
    assert "ended" in last["message"]
    r = _openai(proxy, "chat/completions", {"model": "no-terminator", "messages": CHAT, "stream": True})
    assert "[DONE]" not in r.text
    last = orjson.loads(_events(r.text)[-1])
    assert set(last["error"]) == {"message", "type", "param", "code"}


# --- point 4: no echoed credential, capped messages ----------------------------------------------------------

def test_a_provider_error_echoing_the_key_is_redacted_for_caller_and_log(
        proxy: Proxy, faulty: FaultyProvider, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(5):
        r = _invoke(proxy, "echo-auth", {"messages": CHAT})
        assert r.status_code == 401
        assert FAKE_KEY not in r.text
        assert FAKE_KEY[8:24] not in r.text
        assert "Incorrect API key provided" in r.json()["message"]
    assert any(FAKE_KEY in a for a in faulty.auth_seen)  # the stand-in really echoed it
    r = _invoke(proxy, "echo-auth-stream", {"messages": CHAT, "stream": True})
    assert r.status_code == 200
    assert FAKE_KEY not in r.text
    assert "revoked" in r.text
    assert FAKE_KEY not in caplog.text


def test_a_5_mib_provider_error_is_capped_for_caller_and_log(proxy: Proxy, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    r = _invoke(proxy, "big-error", {"messages": CHAT})
    assert r.status_code == 500
    assert len(r.content) < 4096
    assert r.json()["message"].startswith("openai error: ")
    assert "EEEE" in r.json()["message"]
    assert all(len(rec.getMessage()) < 4096 for rec in caplog.records)


# --- point 5: defensive header parsing ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["retry-euro", "retry-ff"])
def test_a_retry_after_that_is_not_latin1_is_not_a_500(proxy: Proxy, name: str) -> None:
    r = _invoke(proxy, name, {"messages": CHAT})
    assert r.status_code == 429, r.text
    assert r.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert "retry-after" not in r.headers
    r = _openai(proxy, "chat/completions", {"model": name, "messages": CHAT})
    assert r.status_code == 429
    assert r.json()["error"]["type"] == "rate_limit_exceeded"


# --- point 7: the answer's shape ----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["wrong-shape", "wrong-shape-list", "no-choices"])
@pytest.mark.parametrize("suffix", ["", "-cmpl", "-emb"])
def test_a_2xx_answer_of_the_wrong_shape_is_a_502(proxy: Proxy, mode: str, suffix: str) -> None:
    field = {"": {"messages": CHAT}, "-cmpl": {"prompt": "hi"}, "-emb": {"input": "hi"}}[suffix]
    r = _invoke(proxy, mode + suffix, field)
    assert r.status_code == 502, r.text
    assert r.json()["error_code"] == "BAD_GATEWAY"


# --- point 2 (answers and stream lines) ---------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["huge", "huge-chunked"])
def test_an_answer_over_the_limit_is_a_502(proxy: Proxy, mode: str) -> None:
    started = time.monotonic()
    r = _invoke(proxy, mode, {"messages": CHAT})
    assert r.status_code == 502, r.text[:300]
    assert "larger than" in r.json()["message"]
    assert time.monotonic() - started < 10


def test_an_sse_line_over_the_limit_ends_the_stream_with_an_error_event(proxy: Proxy) -> None:
    r = _invoke(proxy, "long-line", {"messages": CHAT, "stream": True}, timeout=30)
    assert r.status_code in (200, 502)
    assert "[DONE]" not in r.text
    text = r.text if r.status_code == 502 else _events(r.text)[-1]
    assert "line" in orjson.loads(text)["message"]


# --- point 6: work that ends --------------------------------------------------------------------------------

def test_the_total_deadline_ends_a_dripping_answer(proxy: Proxy) -> None:
    started = time.monotonic()
    r = _invoke(proxy, "drip", {"messages": CHAT})
    took = time.monotonic() - started
    assert r.status_code == 504, r.text
    assert r.json()["error_code"] == "DEADLINE_EXCEEDED"
    assert 3.5 < took < 8
    started = time.monotonic()
    r = _openai(proxy, "chat/completions", {"model": "drip-stream", "messages": CHAT, "stream": True})
    took = time.monotonic() - started
    assert "[DONE]" not in r.text
    assert 3.5 < took < 8
    last = orjson.loads(_events(r.text)[-1]) if r.status_code == 200 else r.json()
    assert last["error"]["type"] == "api_error"
    assert "deadline" in last["error"]["message"] or "time" in last["error"]["message"]


def test_a_caller_that_goes_away_cancels_the_provider_call(proxy: Proxy, faulty: FaultyProvider) -> None:
    before = faulty.cancelled

    async def abandon(n: int) -> None:
        async def one() -> None:
            with pytest.raises(httpx.TimeoutException):
                async with httpx.AsyncClient(timeout=0.5) as client:
                    await client.post(f"{proxy.url}/serving-endpoints/slow/invocations", json={"messages": CHAT})
        await asyncio.gather(*(one() for _ in range(n)))

    asyncio.run(abandon(20))
    deadline = time.monotonic() + 2  # the stand-in would answer 3 s after each call
    while faulty.cancelled - before < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert faulty.cancelled - before == 20


def test_a_caller_that_waits_gets_the_slow_answer(proxy: Proxy) -> None:
    r = _invoke(proxy, "slow", {"messages": CHAT})
    assert r.status_code == 200


def test_request_bodies_nested_too_deep_are_a_400_at_parse_time(proxy: Proxy) -> None:
    for depth in (128, 200, 254, 300, 1023, 5000):
        raw = b'{"messages": [{"role": "user", "content": "hi"}], "x": ' + b"[" * depth + b"]" * depth + b"}"
        r = httpx.post(f"{proxy.url}/serving-endpoints/ok/invocations", content=raw,
                       headers={"content-type": "application/json"}, timeout=10)
        assert r.status_code == 400, (depth, r.text)
        assert r.json()["error_code"] == "MALFORMED_REQUEST"
        assert "deep" in r.json()["message"]
        r = httpx.post(f"{proxy.url}/serving-endpoints/chat/completions",
                       content=raw.replace(b'{"messages"', b'{"model": "ok", "messages"'),
                       headers={"content-type": "application/json"}, timeout=10)
        assert r.status_code == 400, (depth, r.text)
        assert r.json()["error"]["type"] == "invalid_request_error"
    within = b'{"messages": [{"role": "user", "content": "hi"}], "x": ' + b"[" * 100 + b"]" * 100 + b"}"
    r = httpx.post(f"{proxy.url}/serving-endpoints/ok/invocations", content=within,
                   headers={"content-type": "application/json"}, timeout=10)
    assert r.status_code == 200, r.text


def test_under_another_server_a_disconnect_also_cancels_the_provider_call(faulty: FaultyProvider) -> None:
    """Without the proxy's HTTP protocol (its disconnect hook), a task waiting for ``http.disconnect`` does it."""
    from modelgate_proxy.endpoints.services import NO_AUTH, GatewaySettings
    from modelgate_proxy.server import create_app
    from modelgate_proxy.spec import ServingEndpoint

    app = create_app([ServingEndpoint.model_validate(endpoint("slow", [openai_entity(faulty.base("slow"),
                                                                                     key=FAKE_KEY)]))],
                     gateway=GatewaySettings(auth=NO_AUTH))
    sent: list[dict[str, Any]] = []

    async def call() -> float:
        body = orjson.dumps({"messages": CHAT})
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.sleep(0.3)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/serving-endpoints/slow/invocations",
                 "headers": [(b"content-type", b"application/json")], "query_string": b""}
        async with app.router.lifespan_context(app):
            started = time.monotonic()
            await app(scope, receive, send)
            return time.monotonic() - started

    before = faulty.cancelled
    took = asyncio.run(call())
    assert took < 2
    assert sent == []
    deadline = time.monotonic() + 2
    while faulty.cancelled == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert faulty.cancelled == before + 1


def test_an_endpoint_s_own_request_timeout_wins(tmp_path_factory: pytest.TempPathFactory,
                                                faulty: FaultyProvider) -> None:
    """``spec.proxy.requestTimeoutSeconds`` (2 s) applies to its endpoint; the process's 30 s to the others."""
    short = endpoint("drip-short", [openai_entity(faulty.base("drip"))])
    short["spec"]["proxy"] = {"requestTimeoutSeconds": 2}
    with run_proxy(tmp_path_factory.mktemp("deadline"), [short, endpoint("slow", [openai_entity(faulty.base("slow"))])],
                   secrets={"openai": {"api-key": FAKE_KEY}}, extra=["--request-timeout", "30"]) as p:
        started = time.monotonic()
        r = _invoke(p, "drip-short", {"messages": CHAT})
        took = time.monotonic() - started
        assert r.status_code == 504, r.text
        assert "deadline of 2 seconds" in r.json()["message"]
        assert 1.5 < took < 5
        assert _invoke(p, "slow", {"messages": CHAT}).status_code == 200  # 3 s: within the process's 30 s
