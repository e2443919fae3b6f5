"""Streams: 1,000 streams cut by the caller leave no provider connection open; provider failures mid-stream
end the stream with an error event, never a hang."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import httpx
import orjson

from tests.standins.openai_api import OpenAIStandIn

from .conftest import FAKE_KEY
from .harness import endpoint, established_connections, openai_entity, run_proxy


def _body(text: str, *, stream: bool = True) -> dict:
    return {"messages": [{"role": "user", "content": text}], "stream": stream}


def test_thousand_cut_streams_leave_no_upstream_connection(tmp_path: Path,
                                                           openai_standin: tuple[OpenAIStandIn, str]) -> None:
    standin, url = openai_standin
    port = int(url.rsplit(":", 1)[1])

    async def cut_streams(target: str, total: int, parallel: int) -> int:
        got_data = 0
        connector = aiohttp.TCPConnector(limit=parallel, force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            sem = asyncio.Semaphore(parallel)

            async def one() -> None:
                nonlocal got_data
                async with sem:
                    resp = await session.post(target, json=_body("__endless__ keep going"))
                    assert resp.status == 200
                    first = await resp.content.readany()  # some events arrived: the stream is live
                    if first.startswith(b"data: "):
                        got_data += 1
                    resp.close()  # the caller hangs up mid-stream

            await asyncio.gather(*(one() for _ in range(total)))
        return got_data

    with run_proxy(tmp_path, [endpoint("chat", [openai_entity(url)])], secrets={"openai": {"api-key": FAKE_KEY}}) as proxy:
        got = asyncio.run(cut_streams(f"{proxy.url}/serving-endpoints/chat/invocations", 1000, 50))
        assert got == 1000
        deadline = time.monotonic() + 10
        while (standin.stats.active_streams or established_connections(port)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert standin.stats.streams_started == 1000
        assert standin.stats.active_streams == 0
        assert established_connections(port) == 0


def test_upstream_cut_mid_stream_ends_with_error_event(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    _, url = openai_standin
    with run_proxy(tmp_path, [endpoint("chat", [openai_entity(url)])], secrets={"openai": {"api-key": FAKE_KEY}}) as proxy:
        r = httpx.post(f"{proxy.url}/serving-endpoints/chat/invocations", json=_body("__cut__ a b c d e f g h"), timeout=10)
        events = [e for e in r.text.split("\n\n") if e]
        assert r.status_code == 200
        last = orjson.loads(events[-1].removeprefix("data: "))
        assert last["error_code"] == "BAD_GATEWAY"
        assert "data: [DONE]" not in r.text
        # OpenAI route: the error event has the OpenAI shape, so the SDK raises.
        r = httpx.post(f"{proxy.url}/serving-endpoints/chat/completions",
                       json={"model": "chat", **_body("__error_event__ a b c")}, timeout=10)
        events = [orjson.loads(e.removeprefix("data: ")) for e in r.text.split("\n\n") if e]
        last = events[-1]
        assert set(last["error"]) == {"message", "type", "param", "code"}
        assert "overloaded" in last["error"]["message"]
        # The chunks the provider sent before its error event reach the caller ahead of it (the role chunk
        # and the first piece of text, whether or not they arrived in the same read as the error).
        before = events[:-1]
        assert before[0]["choices"][0]["delta"]["role"] == "assistant"
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in before if c["choices"])


def test_stream_upstream_error_status_before_start(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    _, url = openai_standin
    with run_proxy(tmp_path, [endpoint("chat", [openai_entity(url)])], secrets={"openai": {"api-key": FAKE_KEY}}) as proxy:
        r = httpx.post(f"{proxy.url}/serving-endpoints/chat/invocations", json=_body("__rate_limit__"))
        assert r.status_code == 429
        assert r.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"


def test_timeouts_and_unreachable_provider(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    _, url = openai_standin
    from tests.standins.server import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    manifests = [endpoint("slow", [openai_entity(url)]), endpoint("dead", [openai_entity(dead)])]
    with run_proxy(tmp_path, manifests, secrets={"openai": {"api-key": FAKE_KEY}}, extra=["--read-timeout", "0.1"]) as proxy:
        r = httpx.post(f"{proxy.url}/serving-endpoints/slow/invocations", json=_body("__slow__", stream=False))
        assert r.status_code == 504
        assert r.json()["error_code"] == "DEADLINE_EXCEEDED"
        r = httpx.post(f"{proxy.url}/serving-endpoints/dead/invocations", json=_body("hi", stream=False))
        assert r.status_code == 502
        assert r.json()["error_code"] == "BAD_GATEWAY"
