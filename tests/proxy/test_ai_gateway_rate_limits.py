"""Rate limits (``aiGateway.rateLimits``) through the real proxy, with the official openai client and the Databricks
route: refusals (429, ``retry-after``, the limit named), reservations too large for a limit (400), the rules per
caller. The counting rules themselves, against both backends: ``test_rate_limit_rules.py``."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from tests.standins.openai_api import OpenAIStandIn

from .conftest import FAKE_KEY
from .harness import endpoint, openai_entity, run_proxy

SECRETS = {"openai": {"api-key": FAKE_KEY}}
IDENTITY = ["--identity-header", "X-Forwarded-Email", "--groups-header", "X-Forwarded-Groups",
            "--service-principal-header", "X-Forwarded-Client-Id"]


def test_openai_client_gets_rate_limit_error_with_retry_after(tmp_path: Path,
                                                              openai_standin: tuple[OpenAIStandIn, str]) -> None:
    standin, url = openai_standin
    manifest = endpoint("chat", [openai_entity(url)],
                        ai_gateway={"rateLimits": [{"key": "endpoint", "calls": 2, "renewalPeriod": "minute"}]})
    with run_proxy(tmp_path, [manifest], secrets=SECRETS) as proxy:
        client = openai.OpenAI(base_url=proxy.base, api_key="caller", max_retries=0)
        for _ in range(2):
            client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
        assert info.value.status_code == 429
        assert info.value.code == "rate_limit_exceeded"
        assert 1 <= int(info.value.response.headers["retry-after"]) <= 61  # a count leaves after 60-61 s
        r = httpx.post(f"{proxy.url}/serving-endpoints/chat/invocations",
                       json={"messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 429
        assert r.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        assert 1 <= int(r.headers["retry-after"]) <= 61
        assert len(standin.stats.requests) == 2  # refused calls never reach the provider
        assert 'modelgate_rate_limited_total{endpoint="chat"} 2.0' in httpx.get(f"{proxy.url}/metrics").text


def test_per_user_group_and_token_limits_through_the_proxy(tmp_path: Path,
                                                           openai_standin: tuple[OpenAIStandIn, str]) -> None:
    _standin, url = openai_standin
    manifest = endpoint("chat", [openai_entity(url)], ai_gateway={"rateLimits": [
        {"key": "user", "calls": 1, "renewalPeriod": "minute"},
        {"key": "user", "principal": "alice@example.com", "calls": 3, "renewalPeriod": "minute"},
        {"key": "user_group", "principal": "support", "calls": 2, "renewalPeriod": "minute"},
    ]})
    tokens = endpoint("tok", [openai_entity(url)],
                      ai_gateway={"rateLimits": [{"key": "user", "tokens": 5, "renewalPeriod": "minute"}]})
    body = {"messages": [{"role": "user", "content": "one two three"}], "max_tokens": 2}

    def post(name: str, who: dict[str, str], stream: bool = False, **extra: object) -> httpx.Response:
        return httpx.post(f"{proxy.url}/serving-endpoints/{name}/invocations",
                          json={**body, "stream": stream, **extra}, headers=who)

    def status(name: str, who: dict[str, str], stream: bool = False, **extra: object) -> int:
        return post(name, who, stream, **extra).status_code

    with run_proxy(tmp_path, [manifest, tokens], secrets=SECRETS, auth=IDENTITY) as proxy:
        alice = {"X-Forwarded-Email": "alice@example.com", "X-Forwarded-Groups": "support"}
        assert [status("chat", alice) for _ in range(4)] == [200, 200, 200, 429]
        bob = {"X-Forwarded-Email": "bob@example.com"}
        assert [status("chat", bob) for _ in range(2)] == [200, 429]
        refused = post("chat", bob)
        assert refused.json()["message"].startswith(
            "rate limit exceeded on the endpoint 'chat': 1 calls per minute (user 'bob@example.com'); retry in ")
        assert refused.headers["retry-after"] == refused.json()["message"].split("retry in ")[1].split(" s")[0]
        carol = {"X-Forwarded-Email": "carol@example.com", "X-Forwarded-Groups": "support,other"}
        dave = {"X-Forwarded-Email": "dave@example.com", "X-Forwarded-Groups": "support"}
        assert [status("chat", carol), status("chat", dave), status("chat", carol)] == [200, 200, 429]
        assert "2 calls per minute (group 'support')" in post("chat", dave).json()["message"]
        # tokens: the request reserves 3 (prompt estimate) + 2 (max_tokens) = 5, the whole budget; the stand-in
        # ignores max_tokens and uses 3 + 5 tokens: charged when the answer ends, streamed or not
        assert [status("tok", bob, stream=True), status("tok", bob)] == [200, 429]
        assert [status("tok", dave), status("tok", dave)] == [200, 429]
        # a reservation larger than the limit itself: 400, saying so (not a 429 the caller would retry)
        erin = {"X-Forwarded-Email": "erin@example.com"}
        big = post("tok", erin, max_tokens=50)
        assert big.status_code == 400
        assert big.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert big.json()["message"] == (
            "the request needs more tokens than a rate limit on the endpoint 'tok' allows at all: it reserves 53 "
            "tokens (3 estimated prompt tokens + max_tokens 50), over 5 tokens per minute (user "
            "'erin@example.com'); lower max_tokens or the prompt")
        # no max_tokens: the default 1024 is an estimate, capped at what the limit leaves after the prompt
        # (5 - 3 = 2), so the request is admitted rather than refused as too large; it then uses the budget
        unset = post("tok", erin, max_tokens=None)
        assert unset.status_code == 200, unset.text
        assert status("tok", erin, max_tokens=None) == 429
        text = httpx.get(f"{proxy.url}/metrics").text
        assert FAKE_KEY not in text
