"""Usage per principal in Prometheus with a bounded label set: at the bound, beyond it (``other``), after a
principal's place is given up, and through the proxy with many callers."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, Counter

from modelgate_proxy.metrics import PrincipalUsage
from tests.standins.openai_api import OpenAIStandIn

from .conftest import FAKE_KEY
from .harness import endpoint, openai_entity, run_proxy


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def series(registry: CollectorRegistry, name: str) -> dict[tuple[str, ...], float]:
    out: dict[tuple[str, ...], float] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sample.labels.values())] = sample.value
    return out


def test_usage_per_principal_is_bounded() -> None:
    registry = CollectorRegistry()
    requests = Counter("r", "r", ["endpoint", "principal", "principal_type"], registry=registry)
    tokens = Counter("t", "t", ["endpoint", "principal", "principal_type", "token_type"], registry=registry)
    clock = Clock()
    usage = PrincipalUsage(requests, tokens, limit=3, idle_seconds=600, clock=clock)
    for i in range(3):  # at the bound: each has its own series
        usage.record("chat", "user", f"u{i}", 10, 5)
    assert usage.labelled("chat") == 3
    for i in range(3, 1000):  # one noisy caller under many names, or many callers: one more label value
        usage.record("chat", "user", f"u{i}", 1, 1)
    usage.record("chat", "user", "u0", 10, 5)
    got = series(registry, "r_total")
    assert got == {("chat", "u0", "user"): 2.0, ("chat", "u1", "user"): 1.0, ("chat", "u2", "user"): 1.0,
                   ("chat", "other", "other"): 997.0}
    assert series(registry, "t_total")[("chat", "other", "other", "input")] == 997.0
    usage.record("embed", "service_principal", "etl", 4, None)  # the bound is per endpoint
    assert series(registry, "r_total")[("embed", "etl", "service_principal")] == 1.0
    # u1 and u2 stay silent for 10 minutes: newcomers take their places, their series go
    clock.t = 700.0
    usage.record("chat", "user", "u0", 1, 1)
    usage.record("chat", "user", "late1", 1, 1)
    usage.record("chat", "user", "late2", 1, 1)
    usage.record("chat", "user", "late3", 1, 1)  # full again: other
    names = {labels[1] for labels in series(registry, "r_total") if labels[0] == "chat"}
    assert names == {"u0", "late1", "late2", "other"}
    assert len(names) <= 3 + 1


def test_usage_per_principal_through_the_proxy(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    _standin, url = openai_standin
    manifest = endpoint("chat", [openai_entity(url)], ai_gateway={"usageTrackingConfig": {"enabled": True}})
    extra = ["--usage-metrics-principals", "2", "--usage-log", str(tmp_path / "usage.jsonl")]
    with run_proxy(tmp_path, [manifest], secrets={"openai": {"api-key": FAKE_KEY}}, extra=extra,
                   auth=["--identity-header", "X-Forwarded-Email"]) as proxy:
        for i in range(5):
            r = httpx.post(f"{proxy.url}/serving-endpoints/chat/invocations",
                           json={"messages": [{"role": "user", "content": "one two three"}]},
                           headers={"X-Forwarded-Email": f"user{i}@example.com"})
            assert r.status_code == 200
        text = httpx.get(f"{proxy.url}/metrics").text
    lines = [line for line in text.splitlines() if line.startswith("modelgate_principal_requests_total{")]
    assert sorted(lines) == [
        'modelgate_principal_requests_total{endpoint="chat",principal="other",principal_type="other"} 3.0',
        'modelgate_principal_requests_total{endpoint="chat",principal="user0@example.com",principal_type="user"} 1.0',
        'modelgate_principal_requests_total{endpoint="chat",principal="user1@example.com",principal_type="user"} 1.0',
    ]
    assert ('modelgate_principal_tokens_total{endpoint="chat",principal="other",principal_type="other",'
            'token_type="output"} 15.0') in text  # "You said: one two three": 5 tokens each
    assert FAKE_KEY not in text
