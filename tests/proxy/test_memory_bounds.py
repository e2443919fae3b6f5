"""Memory under the rendered pod limit (issue 12, point 2), measured on a ``modelgate serve`` process with its
default bounds: 12 concurrent request bodies just under the 16 MiB body limit, 100 MiB provider answers (with and
without ``Content-Length``) and SSE lines that never end. The operator renders the proxy with a 256 MiB memory
limit (``operator/modelgate_operator/render.py``); the process's peak resident set must stay below it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.standins.faulty_provider import FaultyProvider

from .conftest import FAKE_KEY
from .harness import endpoint, openai_entity
from .serve_process import ServeProcess, serve_process

POD_LIMIT_KIB = 256 * 1024
BODY_LIMIT = 16 * 1024 * 1024


async def _concurrent_bodies(url: str, n: int) -> list[httpx.Response]:
    text = "x" * (BODY_LIMIT - 1024)
    body = ('{"messages": [{"role": "user", "content": "' + text + '"}]}').encode()
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=httpx.Limits(max_connections=n)) as client:
        return await asyncio.gather(*(client.post("/serving-endpoints/chat/invocations", content=body,
                                                  headers={"content-type": "application/json"})
                                      for _ in range(n)))


async def _large_answers(url: str) -> list[httpx.Response]:
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    stream = {**chat, "stream": True}
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        calls = [client.post(f"/serving-endpoints/{name}/invocations", json=body)
                 for name, body in [("huge", chat), ("huge", chat), ("huge-chunked", chat), ("huge-chunked", chat),
                                    ("long-line", stream), ("long-line", stream), ("long-line", stream)]]
        return await asyncio.gather(*calls)


def _peak(proxy: ServeProcess) -> int:
    return proxy.peak_rss_kib()


def test_worst_case_bodies_and_answers_stay_under_the_pod_limit(tmp_path: Path) -> None:
    with FaultyProvider.running() as fp:
        manifests = [endpoint("chat", [openai_entity(fp.base("ok"))]),
                     endpoint("huge", [openai_entity(fp.base("huge"))]),
                     endpoint("huge-chunked", [openai_entity(fp.base("huge_chunked"))]),
                     endpoint("long-line", [openai_entity(fp.base("long_line"))])]
        with serve_process(tmp_path, manifests, secrets={"openai": {"api-key": FAKE_KEY}}) as proxy:
            idle = proxy.rss_kib()
            large = asyncio.run(_large_answers(proxy.url))
            after_answers = _peak(proxy)
            answers = asyncio.run(_concurrent_bodies(proxy.url, 12))
            after_bodies = _peak(proxy)
            statuses = sorted(r.status_code for r in answers)
            refused = [r for r in answers if r.status_code == 503]
            ok = httpx.post(f"{proxy.url}/serving-endpoints/chat/invocations",
                            json={"messages": [{"role": "user", "content": "hi"}]}, timeout=30)
    print(f"memory: idle {idle / 1024:.1f} MiB; peak after 100 MiB answers and endless SSE lines "
          f"{after_answers / 1024:.1f} MiB (statuses {[r.status_code for r in large]}); peak after 12 x 16 MiB "
          f"bodies {after_bodies / 1024:.1f} MiB (statuses {statuses})")
    assert after_bodies < POD_LIMIT_KIB
    assert after_answers < POD_LIMIT_KIB
    assert statuses.count(200) >= 1
    assert set(statuses) <= {200, 503}
    for r in refused:
        assert r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert int(r.headers["retry-after"]) >= 1
    for r in large[:4]:
        assert r.status_code == 502
    for r in large[4:]:
        assert "[DONE]" not in r.text
    assert ok.status_code == 200
