"""The PII guardrail on a hostile body (issue 12, point 1): 312 KB holding 40,000 IP addresses is answered
within a second while ``/healthz`` keeps answering within 50 ms, with the proxy in its own process.

Wall-clock bounds on a shared 2-core machine: the request is measured up to three times on the same proxy and
one measurement must meet both bounds (the quadratic detector took 71 s on this input, every time)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from modelgate_proxy.stages.guardrails.pii import detect, mask
from tests.standins.faulty_provider import FaultyProvider

from .conftest import FAKE_KEY
from .harness import endpoint, openai_entity
from .serve_process import serve_process

IPS = " ".join(f"{i % 10}.{i // 10 % 10}.{i // 100 % 10}.{i // 1000 % 10}" for i in range(40_000))
"""40,000 IPv4 addresses, 320,000 characters (312.5 KiB), as in the issue."""


def _best_of_3(text: str) -> tuple[float, list]:
    best, found = float("inf"), []
    for _ in range(3):
        started = time.perf_counter()
        found = detect(text)
        best = min(best, time.perf_counter() - started)
    return best, found


def test_the_detector_is_linear_in_the_number_of_findings() -> None:
    assert len(IPS) >= 312 * 1024
    t_small, small = _best_of_3(IPS[: len(IPS) // 8])
    t_all, found = _best_of_3(IPS)
    assert len(found) == 40_000
    assert len(small) > 4_000
    assert mask(IPS, found).count("[IP_ADDRESS]") == 40_000
    # 8x the text, 7.5x the findings: linear is ~8x the time; quadratic was ~60x (71 s for this input). The bound
    # leaves room for a loaded machine (best of three runs each).
    assert t_all < 20 * max(t_small, 0.005), (t_small, t_all)
    print(f"pii detect: {len(IPS)} chars, 40,000 IPs in {t_all * 1000:.0f} ms (1/8 of it: {t_small * 1000:.0f} ms)")


@pytest.mark.parametrize("behavior", ["BLOCK", "MASK"])
def test_a_body_of_40000_ips_is_answered_in_a_second_and_healthz_stays_fast(tmp_path: Path, behavior: str) -> None:
    gateway = {"guardrails": {"input": {"pii": {"behavior": behavior}}}}
    with FaultyProvider.running() as fp, serve_process(
            tmp_path, [endpoint("chat", [openai_entity(fp.base("ok"))], ai_gateway=gateway)],
            secrets={"openai": {"api-key": FAKE_KEY}}) as proxy:
        runs = []
        for _ in range(3):
            took, status, health = asyncio.run(_measure(proxy.url))
            assert status == (400 if behavior == "BLOCK" else 200)
            assert len(health) >= 5
            runs.append((took, max(health)))
            print(f"pii {behavior}: answered {status} in {took * 1000:.0f} ms; /healthz during it: {len(health)} "
                  f"probes, slowest {max(health) * 1000:.1f} ms")
            if took < 1.0 and max(health) < 0.050:
                break
    assert any(took < 1.0 and slowest < 0.050 for took, slowest in runs), runs


async def _measure(url: str) -> tuple[float, int, list[float]]:
    body = {"messages": [{"role": "user", "content": IPS}]}
    health: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        await client.get("/healthz")  # the probe's connection is open before the measurement
        done = asyncio.Event()

        async def probe() -> None:
            while not done.is_set():
                started = time.perf_counter()
                r = await client.get("/healthz")
                assert r.status_code == 200
                health.append(time.perf_counter() - started)
                await asyncio.sleep(0.01)

        prober = asyncio.ensure_future(probe())
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        r = await client.post("/serving-endpoints/chat/invocations", json=body)
        took = time.perf_counter() - started
        await asyncio.sleep(0.05)
        done.set()
        await prober
    return took, r.status_code, health
