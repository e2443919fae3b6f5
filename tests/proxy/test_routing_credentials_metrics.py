"""Traffic split, fallbacks, credential rotation on disk, metrics, health, and the key-never-leaks sentinel."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import httpx
import pytest

from modelgate_proxy.stages.traffic_split import TrafficSplitter
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.server import serve_app

from .conftest import FAKE_KEY
from .harness import endpoint, openai_entity, run_proxy, write_secret

MSG = {"messages": [{"role": "user", "content": "hi"}]}


def test_traffic_split_within_statistical_bounds() -> None:
    splitter = TrafficSplitter([70, 20, 0, 10], rng=random.Random(1234))
    n = 20_000
    counts = [0, 0, 0, 0]
    for _ in range(n):
        order = splitter.order()
        counts[order[0]] += 1
        assert sorted(order) == [0, 1, 2, 3]
    assert counts[2] == 0  # a 0 % entity never gets first-choice traffic
    expected = [0.7 * n, 0.2 * n, 0.0, 0.1 * n]
    chi2 = sum((counts[i] - expected[i]) ** 2 / expected[i] for i in (0, 1, 3))
    assert chi2 < 13.82, (counts, chi2)  # chi-square, 2 degrees of freedom, p = 0.001


def test_fallback_order_is_list_order() -> None:
    splitter = TrafficSplitter([0, 100, 0])
    assert splitter.order() == (1, 0, 2)


def test_traffic_split_through_the_proxy(tmp_path: Path) -> None:
    a, b = OpenAIStandIn(api_key=FAKE_KEY), OpenAIStandIn(api_key=FAKE_KEY)
    with serve_app(a.app) as url_a, serve_app(b.app) as url_b:
        manifest = endpoint("split", [openai_entity(url_a, name="a"), openai_entity(url_b, name="b")],
                            routes=[("a", 75), ("b", 25)])
        with run_proxy(tmp_path, [manifest], secrets={"openai": {"api-key": FAKE_KEY}}) as proxy:
            served = {"a": 0, "b": 0}
            with httpx.Client() as client:
                for _ in range(600):
                    r = client.post(f"{proxy.url}/serving-endpoints/split/invocations", json=MSG)
                    served[r.headers["served-model-name"]] += 1
    # binomial(600, 0.25): mean 150, sd 10.6; 5 sd either side
    assert 97 <= served["b"] <= 203, served
    assert len(b.stats.requests) == served["b"]
    assert len(a.stats.requests) == served["a"]


def test_fallbacks_on_429_and_5xx(tmp_path: Path) -> None:
    failing, healthy = OpenAIStandIn(api_key="wrong-key-on-purpose"), OpenAIStandIn(api_key=FAKE_KEY)
    with serve_app(failing.app) as url_bad, serve_app(healthy.app) as url_good:
        entities = [openai_entity(url_good, name="primary"), openai_entity(url_bad, name="secondary"),
                    openai_entity(url_good, name="tertiary")]
        manifest = endpoint("fb", entities, routes=[("primary", 100), ("secondary", 0), ("tertiary", 0)],
                            ai_gateway={"fallbackConfig": {"enabled": True}})
        no_fb = endpoint("nofb", [openai_entity(url_good, name="only")])
        with run_proxy(tmp_path, [manifest, no_fb], secrets={"openai": {"api-key": FAKE_KEY}}) as proxy:
            # primary answers 500; secondary 401 (not retryable) ends the attempt with its error
            r = httpx.post(f"{proxy.url}/serving-endpoints/fb/invocations",
                           json={"messages": [{"role": "user", "content": "__fail_500__"}]})
            assert r.status_code == 401
            assert r.headers["served-model-name"] == "secondary"
            assert len(healthy.stats.requests) == 1
            assert len(failing.stats.requests) == 1
            # a 429 with no healthy alternative: the last error is the answer
            r = httpx.post(f"{proxy.url}/serving-endpoints/nofb/invocations",
                           json={"messages": [{"role": "user", "content": "__rate_limit__"}]})
            assert r.status_code == 429
            # errors carry the proxy's own overhead too, and it is measured
            assert r.headers["served-model-name"] == "only"
            assert 0 <= float(r.headers["x-modelgate-overhead-ms"]) < 1000
            metrics = httpx.get(f"{proxy.url}/metrics").text
            assert 'modelgate_proxy_overhead_seconds_count{endpoint="nofb"} 1.0' in metrics


def test_fallback_reaches_a_healthy_entity(tmp_path: Path) -> None:
    healthy = OpenAIStandIn(api_key=FAKE_KEY)
    from tests.standins.server import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    with serve_app(healthy.app) as url:
        manifest = endpoint("fb", [openai_entity(dead, name="down"), openai_entity(url, name="up")],
                            routes=[("down", 100), ("up", 0)], ai_gateway={"fallbackConfig": {"enabled": True}})
        with run_proxy(tmp_path, [manifest], secrets={"openai": {"api-key": FAKE_KEY}}) as proxy:
            r = httpx.post(f"{proxy.url}/serving-endpoints/fb/invocations", json={**MSG, "stream": True})
            assert r.status_code == 200
            assert r.headers["served-model-name"] == "up"
            assert r.text.endswith("data: [DONE]\n\n")


def test_rotated_credential_is_used_by_the_next_request(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    standin, url = openai_standin
    with run_proxy(tmp_path, [endpoint("chat", [openai_entity(url)])], secrets={"openai": {"api-key": FAKE_KEY}}) as proxy:
        target = f"{proxy.url}/serving-endpoints/chat/invocations"
        assert httpx.post(target, json=MSG).status_code == 200
        new_key = "sk-rotated-1111222233334444"
        standin.api_key = new_key  # the provider now only accepts the new key
        assert httpx.post(target, json=MSG).status_code == 401
        write_secret(tmp_path / "secrets", "openai", "api-key", new_key + "\n")  # kubelet-style symlink swap
        assert httpx.post(target, json=MSG).status_code == 200
        assert standin.stats.last["headers"]["authorization"] == f"Bearer {new_key}"


def test_key_never_leaks_into_logs_errors_or_metrics(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    standin = OpenAIStandIn(api_key="the-provider-wants-another-key")
    caplog.set_level(logging.DEBUG)
    with serve_app(standin.app) as url:
        manifests = [endpoint("ref", [openai_entity(url)]), endpoint("plain", [openai_entity(url, key=FAKE_KEY)]),
                     endpoint("missing", [openai_entity(url, key_ref="{{secrets/absent/key}}")])]
        with run_proxy(tmp_path, manifests, secrets={"openai": {"api-key": FAKE_KEY}}) as proxy:
            texts = []
            for name in ("ref", "plain", "missing"):
                for path, body in ((f"/serving-endpoints/{name}/invocations", MSG),
                                   ("/serving-endpoints/chat/completions", {"model": name, **MSG})):
                    r = httpx.post(proxy.url + path, json=body)
                    assert r.status_code in (401, 503), r.text
                    texts.append(r.text + str(r.headers))
                r = httpx.post(f"{proxy.url}/serving-endpoints/{name}/invocations", json={**MSG, "stream": True})
                texts.append(r.text)
            texts.append(httpx.get(f"{proxy.url}/metrics").text)
            texts.append(httpx.get(f"{proxy.url}/readyz").text)
    assert standin.stats.requests[0]["headers"]["authorization"] == f"Bearer {FAKE_KEY}"  # it was really used
    everything = "\n".join(texts) + caplog.text
    assert "Incorrect API key" in everything  # the provider's message is passed on ...
    for fragment in (FAKE_KEY, FAKE_KEY[:12], FAKE_KEY[-8:], FAKE_KEY[-4:]):
        assert fragment not in everything  # ... but not the key, not even the provider's masked form
    assert "{{secrets/absent/key}}" in everything  # a missing credential is named by its reference


def test_metrics_health_and_readiness(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    _, url = openai_standin
    manifests = [endpoint("chat", [openai_entity(url)])]
    with run_proxy(tmp_path, manifests, secrets={"openai": {"api-key": FAKE_KEY}}) as proxy:
        assert httpx.get(f"{proxy.url}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{proxy.url}/readyz").status_code == 200
        httpx.post(f"{proxy.url}/serving-endpoints/chat/invocations", json=MSG)
        httpx.post(f"{proxy.url}/serving-endpoints/chat/invocations", json={**MSG, "stream": True})
        httpx.post(f"{proxy.url}/serving-endpoints/chat/invocations",
                   json={"messages": [{"role": "user", "content": "__rate_limit__"}]})
        text = httpx.get(f"{proxy.url}/metrics").text
        labels = 'endpoint="chat",served_entity="gpt-4o-mini"'
        assert f"gen_ai_server_request_duration_seconds_count{{{labels}}} 3.0" in text
        assert f"gen_ai_server_time_to_first_token_seconds_count{{{labels}}} 1.0" in text
        assert f"gen_ai_server_time_per_output_token_seconds_count{{{labels}}} 1.0" in text
        assert ('gen_ai_client_token_usage_count{endpoint="chat",gen_ai_token_type="input",'
                'served_entity="gpt-4o-mini"} 2.0') in text
        assert ('gen_ai_client_token_usage_count{endpoint="chat",gen_ai_token_type="output",'
                'served_entity="gpt-4o-mini"} 2.0') in text
        assert f'modelgate_upstream_responses_total{{{labels},status_code="429"}} 1.0' in text
        assert 'modelgate_requests_total{endpoint="chat",status_code="200"} 2.0' in text
        # secret file removed: not ready, and the reason names the reference
        for p in (tmp_path / "secrets" / "openai").iterdir():
            if p.name == "api-key":
                p.unlink()
        r = httpx.get(f"{proxy.url}/readyz")
        assert r.status_code == 503
        assert "{{secrets/openai/api-key}}" in r.json()["message"]
