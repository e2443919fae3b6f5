"""Provider back-pressure (docs/rate-limits.md, "Provider back-pressure"): a 429 with ``Retry-After: 2`` is
retried (single entity, retries on) or falls back and cools the entity down until the reset (skipped by the
traffic split and fallbacks, shared by two proxy processes through one real redis-server); every entity cooling
down answers 429 with ``retry-after`` in the route's shape; a silent stream falls over before its first byte; a
stream under way is never retried; 503s back off with jitter within the attempts and the request's deadline.
The providers' reset headers are read as they send them."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelgate_proxy.providers.reset_hints import go_duration, reset_seconds, retry_after, rfc3339_in
from modelgate_proxy.stages.backpressure.policy import RetryPolicy
from modelgate_proxy.stages.traffic_split import TrafficSplitter
from tests.standins.faulty_provider import FaultyProvider

from .conftest import FAKE_KEY
from .harness import endpoint, openai_entity, run_proxy
from .serve_process import serve_process

SECRETS = {"openai": {"api-key": FAKE_KEY}}
MSG = {"messages": [{"role": "user", "content": "hi"}]}
FALLBACKS = {"fallbackConfig": {"enabled": True}}


@pytest.fixture(scope="module")
def faulty() -> Iterator[FaultyProvider]:
    with FaultyProvider.running() as fp:
        yield fp


@pytest.fixture(autouse=True)
def _fresh_counts(faulty: FaultyProvider) -> None:
    faulty.calls.clear()


def metric(url: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(f"{name}{{{want}}} "):
            return float(line.split()[-1])
    return 0.0


def two(fp: FaultyProvider, first: str, second: str = "ok") -> list[dict[str, Any]]:
    return [openai_entity(fp.base(first), name="a"), openai_entity(fp.base(second), name="b")]


# ---- the providers' reset headers


def test_reset_headers_as_providers_send_them() -> None:
    now = 1_800_000_000.0
    clock = lambda: now  # noqa: E731
    assert retry_after("2") == 2.0
    assert retry_after("1.5") == 1.5
    date = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    assert retry_after(date, clock) == pytest.approx(30.0)
    assert retry_after("Thu, 01 Jan 1970 00:00:00 GMT", clock) is None  # in the past
    assert retry_after("€") is None
    assert retry_after("soon") is None
    assert retry_after("99999999") is None
    assert go_duration("1s") == 1.0
    assert go_duration("6m0s") == 360.0
    assert go_duration("20ms") == 0.02
    assert go_duration("1h2m3.5s") == 3723.5
    assert go_duration("") is None
    assert go_duration("7") is None
    stamp = (datetime.fromtimestamp(now, UTC) + timedelta(seconds=12)).isoformat().replace("+00:00", "Z")
    assert rfc3339_in(stamp, clock) == pytest.approx(12.0)
    assert rfc3339_in("2026-13-01T00:00:00Z", clock) is None
    assert rfc3339_in("2026-01-01T00:00:00", clock) is None
    # the order: retry-after-ms, retry-after, then (429 only) the longest reset header
    assert reset_seconds(429, {"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert reset_seconds(429, {"retry-after": "3", "x-ratelimit-reset-tokens": "6m0s"}) == 3.0
    assert reset_seconds(429, {"x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "6m0s"}) == 360.0
    assert reset_seconds(429, {"anthropic-ratelimit-requests-reset": stamp}, clock) == pytest.approx(12.0)
    assert reset_seconds(503, {"x-ratelimit-reset-requests": "1s"}) is None  # reset headers only mean it on a 429
    assert reset_seconds(503, {"retry-after": "4"}) == 4.0
    assert reset_seconds(429, {"retry-after": "junk"}) is None


def test_backoff_is_full_jitter_under_its_ceiling() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=8.0, rng=random.Random(7))
    for retry, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)):
        waits = [policy.backoff(retry) for _ in range(2000)]
        assert min(waits) >= 0
        assert max(waits) <= ceiling
        assert max(waits) > 0.9 * ceiling
        assert min(waits) < 0.1 * ceiling
    assert not RetryPolicy().cools(1)
    assert RetryPolicy().cools(2)
    assert RetryPolicy(cooldowns="on").cools(1)
    assert not RetryPolicy(cooldowns="off").cools(3)


def test_traffic_split_avoids_cooled_entities_keeping_the_shares() -> None:
    splitter = TrafficSplitter([50, 30, 20, 0], rng=random.Random(3))
    firsts = [splitter.order_without(frozenset({0}))[0] for _ in range(3000)]  # type: ignore[index]
    assert set(firsts) == {1, 2}
    assert 0.53 < firsts.count(1) / 3000 < 0.67  # 30 : 20
    assert splitter.order_without(frozenset({0}))[-1] == 0  # type: ignore[index]
    assert splitter.order_without(frozenset({0, 1, 2})) is None  # only the 0 % entity is left


# ---- through the proxy


def test_a_429_with_retry_after_is_retried_after_it(tmp_path: Path, faulty: FaultyProvider) -> None:
    manifest = endpoint("one", [openai_entity(faulty.base("once_429"))])
    with run_proxy(tmp_path, [manifest], secrets=SECRETS, extra=["--provider-max-attempts", "2"]) as proxy:
        started = time.monotonic()
        r = httpx.post(f"{proxy.url}/serving-endpoints/one/invocations", json=MSG, timeout=10)
        elapsed = time.monotonic() - started
        assert r.status_code == 200, r.text
        assert faulty.calls["once_429"] == 2
        assert 1.0 <= elapsed < 3.0, elapsed  # waited the provider's Retry-After: 1
        assert metric(proxy.url, "modelgate_provider_retries_total", endpoint="one", served_entity="gpt-4o-mini",
                      reason="429") == 1.0


def test_a_retry_after_beyond_the_max_wait_is_answered_at_once(tmp_path: Path, faulty: FaultyProvider) -> None:
    manifest = endpoint("one", [openai_entity(faulty.base("always_429"))])
    with run_proxy(tmp_path, [manifest], secrets=SECRETS,
                   extra=["--provider-max-attempts", "3", "--retry-max-wait", "1"]) as proxy:
        started = time.monotonic()
        r = httpx.post(f"{proxy.url}/serving-endpoints/one/invocations", json=MSG, timeout=10)
        assert r.status_code == 429
        assert r.headers["retry-after"] == "2"
        assert time.monotonic() - started < 1.0
        assert faulty.calls["always_429"] == 1


def test_429_falls_back_and_the_entity_is_skipped_until_the_reset(tmp_path: Path, faulty: FaultyProvider) -> None:
    manifest = endpoint("fb", two(faulty, "always_429"), routes=[("a", 100), ("b", 0)], ai_gateway=FALLBACKS)
    with run_proxy(tmp_path, [manifest], secrets=SECRETS, extra=["--provider-max-attempts", "3"]) as proxy:
        target = f"{proxy.url}/serving-endpoints/fb/invocations"
        started = time.monotonic()
        r = httpx.post(target, json=MSG, timeout=10)
        assert r.status_code == 200
        assert r.headers["served-model-name"] == "b"
        assert time.monotonic() - started < 1.0  # fell back at once, no wait on the cooled entity
        assert faulty.calls == {"always_429": 1, "ok": 1}
        for _ in range(5):  # cooling down: a is not called, b answers
            r = httpx.post(target, json=MSG, timeout=10)
            assert r.status_code == 200
            assert r.headers["served-model-name"] == "b"
        assert faulty.calls["always_429"] == 1
        time.sleep(max(0.0, started + 2.3 - time.monotonic()))  # the reset passed: a is tried again
        httpx.post(target, json=MSG, timeout=10)
        assert faulty.calls["always_429"] == 2
        assert metric(proxy.url, "modelgate_cooldowns_total", endpoint="fb", served_entity="a", reason="429") == 2.0
        assert metric(proxy.url, "modelgate_fallbacks_total", endpoint="fb", served_entity="a", reason="429") == 2.0


def test_every_entity_cooling_down_is_a_429_with_retry_after_in_the_routes_shape(
        tmp_path: Path, faulty: FaultyProvider) -> None:
    manifest = endpoint("split", two(faulty, "always_429", "always_429"), routes=[("a", 50), ("b", 50)])
    with run_proxy(tmp_path, [manifest], secrets=SECRETS) as proxy:
        for _ in range(2):  # each 429 cools its entity; the next request goes to the other one
            r = httpx.post(f"{proxy.url}/serving-endpoints/split/invocations", json=MSG, timeout=10)
            assert r.status_code == 429
            assert r.headers["retry-after"] == "2"
        assert faulty.calls["always_429"] == 2
        r = httpx.post(f"{proxy.url}/serving-endpoints/chat/completions", json={"model": "split", **MSG}, timeout=10)
        assert r.status_code == 429, r.text
        assert 1 <= int(r.headers["retry-after"]) <= 2
        assert r.json()["error"]["type"] == "rate_limit_exceeded"
        assert "cooling down" in r.json()["error"]["message"]
        r = httpx.post(f"{proxy.url}/serving-endpoints/split/invocations", json=MSG, timeout=10)
        assert r.status_code == 429
        assert r.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        assert faulty.calls["always_429"] == 2  # neither provider was called while cooling down


def test_a_silent_stream_falls_over_before_its_first_byte(tmp_path: Path, faulty: FaultyProvider) -> None:
    manifest = endpoint("fb", two(faulty, "silent_stream"), routes=[("a", 100), ("b", 0)], ai_gateway=FALLBACKS)
    with run_proxy(tmp_path, [manifest], secrets=SECRETS, extra=["--first-byte-timeout", "1"]) as proxy:
        started = time.monotonic()
        r = httpx.post(f"{proxy.url}/serving-endpoints/fb/invocations", json={**MSG, "stream": True}, timeout=10)
        elapsed = time.monotonic() - started
        assert r.status_code == 200
        assert r.headers["served-model-name"] == "b"
        assert r.text.endswith("data: [DONE]\n\n")
        assert '"hel"' in r.text
        assert 1.0 <= elapsed < 3.0, elapsed
        assert faulty.calls == {"silent_stream": 1, "ok": 1}
        assert metric(proxy.url, "modelgate_fallbacks_total", endpoint="fb", served_entity="a",
                      reason="first_byte") == 1.0


def test_a_stream_under_way_is_never_retried(tmp_path: Path, faulty: FaultyProvider) -> None:
    manifest = endpoint("fb", two(faulty, "no_terminator"), routes=[("a", 100), ("b", 0)], ai_gateway=FALLBACKS)
    with run_proxy(tmp_path, [manifest], secrets=SECRETS,
                   extra=["--provider-max-attempts", "3", "--first-byte-timeout", "5"]) as proxy:
        r = httpx.post(f"{proxy.url}/serving-endpoints/fb/invocations", json={**MSG, "stream": True}, timeout=10)
        assert r.status_code == 200
        assert r.headers["served-model-name"] == "a"
        assert '"hel"' in r.text
        assert '"lo"' in r.text
        assert "[DONE]" not in r.text
        assert faulty.calls == {"no_terminator": 1}  # neither retried nor fallen back: bytes reached the caller
        assert metric(proxy.url, "modelgate_provider_retries_total", endpoint="fb", served_entity="a",
                      reason="502") == 0.0


def test_503_backs_off_within_the_attempts_and_the_deadline(tmp_path: Path, faulty: FaultyProvider) -> None:
    manifests = [endpoint("down", [openai_entity(faulty.base("down_503"))])]
    with run_proxy(tmp_path, manifests, secrets=SECRETS,
                   extra=["--provider-max-attempts", "3", "--retry-backoff-base", "0.05"]) as proxy:
        r = httpx.post(f"{proxy.url}/serving-endpoints/down/invocations", json=MSG, timeout=10)
        assert r.status_code == 503
        assert faulty.calls["down_503"] == 3
        assert metric(proxy.url, "modelgate_provider_retries_total", endpoint="down", served_entity="gpt-4o-mini",
                      reason="503") == 2.0
    faulty.calls.clear()
    with run_proxy(tmp_path, manifests, secrets=SECRETS,
                   extra=["--provider-max-attempts", "10", "--retry-backoff-base", "3", "--retry-backoff-max", "3",
                          "--request-timeout", "1"]) as proxy:
        started = time.monotonic()
        r = httpx.post(f"{proxy.url}/serving-endpoints/down/invocations", json=MSG, timeout=10)
        assert r.status_code in (503, 504)
        assert time.monotonic() - started < 1.6  # no wait past the request's deadline
        assert faulty.calls["down_503"] < 10


def test_a_cool_down_is_shared_by_two_proxies_through_redis(tmp_path: Path, redis_url: str,
                                                             faulty: FaultyProvider) -> None:
    manifest = endpoint("fb", two(faulty, "always_429"), routes=[("a", 100), ("b", 0)], ai_gateway=FALLBACKS)
    flags = ["--rate-limit-redis-url", redis_url, "--rate-limit-redis-prefix", f"bp{time.time_ns()}"]
    with serve_process(tmp_path, [manifest], secrets=SECRETS, extra=flags) as one, \
            serve_process(tmp_path, [manifest], secrets=SECRETS, extra=flags) as other:
        r = httpx.post(f"{one.url}/serving-endpoints/fb/invocations", json=MSG, timeout=10)
        assert r.status_code == 200
        assert r.headers["served-model-name"] == "b"
        assert faulty.calls["always_429"] == 1
        time.sleep(0.8)  # the other process syncs cool-downs every 0.5 s
        for _ in range(3):
            r = httpx.post(f"{other.url}/serving-endpoints/fb/invocations", json=MSG, timeout=10)
            assert r.status_code == 200
            assert r.headers["served-model-name"] == "b"
        assert faulty.calls["always_429"] == 1  # the other proxy never called the cooled entity
        assert metric(other.url, "modelgate_cooldowns_total", endpoint="fb", served_entity="a", reason="429") == 0.0
        time.sleep(2.0)  # the Redis key expired with the reset
        httpx.post(f"{other.url}/serving-endpoints/fb/invocations", json=MSG, timeout=10)
        assert faulty.calls["always_429"] == 2
