"""Token limits that concurrency and streams cannot overshoot: 50 concurrent requests, then 50 concurrent streams,
against a 100-tokens-per-minute endpoint limit, answers of 50 tokens each, through the real proxy (in-process
counters, then Redis). Each request reserves its estimate on admission (25 estimated prompt tokens + max_tokens 25
= 50), so only two fit, however many arrive at once; each is settled to its real use (24 + 26 = 50, the
stand-in ignores max_tokens) when its answer ends. Stated bound (docs/rate-limits.md): the tokens of the requests
admitted in any 60 s are at most the limit plus what they used beyond their reservations, here 100 + 0.
Charged only after the answer, as before, all 50 were admitted (2,500 tokens). A third burst reserves too little
(max_tokens 1: 26 per request, 50 used): three are admitted, 150 tokens, within the bound 100 + 3 x 24."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.standins.openai_api import OpenAIStandIn

from .conftest import FAKE_KEY
from .harness import endpoint, openai_entity, run_proxy

SECRETS = {"openai": {"api-key": FAKE_KEY}}
LIMIT = 100
TEXT = " ".join(["abc"] * 23 + ["__slow__"])  # 100 characters: estimated 25 tokens; the stand-in counts 24 words
"""The stand-in answers "You said: <text>" (26 tokens) after 0.3 s, so the 50 requests overlap."""


def _usage_of_stream(body: bytes) -> int:
    total = 0
    for line in body.split(b"\n"):
        if line.startswith(b"data: {"):
            usage = orjson.loads(line[6:]).get("usage")
            if usage:
                total = usage["total_tokens"]
    return total


async def _burst(url: str, name: str, stream: bool, max_tokens: int,
                 n: int = 50) -> list[tuple[int, int, dict[str, Any]]]:
    """(status, tokens used, error body) of ``n`` requests sent at once."""
    body: dict[str, Any] = {"messages": [{"role": "user", "content": TEXT}], "max_tokens": max_tokens,
                            "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}

    async def one(client: httpx.AsyncClient) -> tuple[int, int, dict[str, Any]]:
        r = await client.post(f"{url}/serving-endpoints/{name}/invocations", json=body)
        if r.status_code != 200:
            return r.status_code, 0, {**r.json(), "retry-after": r.headers.get("retry-after")}
        used = _usage_of_stream(r.content) if stream else r.json()["usage"]["total_tokens"]
        return 200, used, {}

    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        return list(await asyncio.gather(*(one(client) for _ in range(n))))


@pytest.mark.parametrize("backend", ["local", "redis"])
def test_concurrent_requests_and_streams_stay_within_the_token_limit(
        backend: str, tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str], request: pytest.FixtureRequest,
        capsys: pytest.CaptureFixture[str]) -> None:
    standin, url = openai_standin
    gateway = {"rateLimits": [{"key": "endpoint", "tokens": LIMIT, "renewalPeriod": "minute"}]}
    manifests = [endpoint(name, [openai_entity(url)], ai_gateway=gateway) for name in ("whole", "streamed", "under")]
    extra = []
    if backend == "redis":
        extra = ["--rate-limit-redis-url", request.getfixturevalue("redis_url"), "--rate-limit-redis-prefix", "conc"]
    with run_proxy(tmp_path, manifests, secrets=SECRETS, extra=extra) as proxy:
        for name, stream, max_tokens, expected in (("whole", False, 25, 2), ("streamed", True, 25, 2),
                                                   ("under", False, 1, 3)):
            reserved = 25 + max_tokens
            before = len(standin.stats.requests)
            results = asyncio.run(_burst(proxy.url, name, stream, max_tokens))
            admitted = [used for status, used, _ in results if status == 200]
            refused = [err for status, _, err in results if status != 200]
            bound = LIMIT + sum(max(0, used - reserved) for used in admitted)
            with capsys.disabled():
                print(f"\n[{backend}] 50 concurrent {'streams' if stream else 'requests'} reserving {reserved} tokens, "
                      f"limit {LIMIT} tokens/min: admitted {len(admitted)}, admitted tokens {sum(admitted)} "
                      f"(bound: limit + used beyond the reservations = {bound}), refused {len(refused)}")
            assert len(standin.stats.requests) - before == len(admitted)  # refused calls never reach the provider
            assert all(used == 50 for used in admitted)
            assert sum(admitted) <= bound
            assert len(admitted) == expected  # the reservations that fit; no more while they count
            assert len(refused) == 50 - expected
            for err in refused:
                assert err["error_code"] == "REQUEST_LIMIT_EXCEEDED"
                assert f"{LIMIT} tokens per minute (endpoint)" in err["message"]
                assert 1 <= int(err["retry-after"]) <= 61
