"""Rate limits (``aiGateway.rateLimits``): the counting rules with a controlled clock, then through the real proxy
with the official openai client and the Databricks route."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from modelgate_proxy.errors import RateLimited
from modelgate_proxy.spec import RateLimit
from modelgate_proxy.stages.identity.headers import ANONYMOUS, Principal
from modelgate_proxy.stages.rate_limits.counters import LimitPlan
from tests.standins.openai_api import OpenAIStandIn

from .conftest import FAKE_KEY
from .harness import endpoint, openai_entity, run_proxy

SECRETS = {"openai": {"api-key": FAKE_KEY}}
IDENTITY = ["--identity-header", "X-Forwarded-Email", "--groups-header", "X-Forwarded-Groups",
            "--service-principal-header", "X-Forwarded-Client-Id"]


def limits(*items: dict[str, object]) -> list[RateLimit]:
    return [RateLimit.model_validate({"renewalPeriod": "minute", **item}) for item in items]


def user(name: str, *groups: str) -> Principal:
    return Principal("user", name, groups)


def admitted(plan: LimitPlan, who: Principal, now: float, n: int) -> int:
    """How many of ``n`` calls at ``now`` are admitted."""
    ok = 0
    for _ in range(n):
        try:
            plan.admit(who, now)
            ok += 1
        except RateLimited:
            pass
    return ok


def test_endpoint_limit_counts_exactly_within_the_window_and_renews() -> None:
    plan = LimitPlan("e", limits({"key": "endpoint", "calls": 3}))
    assert admitted(plan, user("a"), 100.0, 2) == 2
    assert admitted(plan, user("b"), 110.0, 5) == 1  # shared by everyone
    with pytest.raises(RateLimited) as info:
        plan.admit(user("c"), 130.5)
    assert info.value.status == 429
    assert info.value.headers["retry-after"] == "30"  # the window started at 100 and ends at 160
    assert "3 calls per minute (endpoint)" in info.value.message
    assert admitted(plan, user("c"), 160.0, 4) == 3  # a new window


def test_default_user_limit_is_per_user_and_a_principal_limit_takes_priority() -> None:
    plan = LimitPlan("e", limits({"key": "user", "calls": 2}, {"key": "user", "principal": "alice", "calls": 5},
                                 {"key": "user_group", "principal": "team", "calls": 1}))
    assert admitted(plan, user("bob"), 0.0, 4) == 2
    assert admitted(plan, user("carol"), 0.0, 4) == 2
    # alice's own limit wins over both the default and her group's
    assert admitted(plan, user("alice", "team"), 0.0, 9) == 5
    # a group limit replaces the default for members without their own
    assert admitted(plan, user("dave", "team"), 0.0, 3) == 1


def test_group_limit_is_shared_and_several_groups_refuse_only_when_all_are_spent() -> None:
    plan = LimitPlan("e", limits({"key": "user_group", "principal": "team", "calls": 3},
                                 {"key": "user_group", "principal": "ops", "calls": 1}))
    assert admitted(plan, user("a", "team"), 0.0, 2) == 2
    assert admitted(plan, user("b", "team"), 0.0, 2) == 1  # the third call of the shared budget
    # a member of team and ops still has ops' call, then is refused
    assert admitted(plan, user("c", "team", "ops"), 1.0, 3) == 1
    with pytest.raises(RateLimited) as info:
        plan.admit(user("c", "team", "ops"), 2.0)
    assert info.value.headers["retry-after"] in ("58", "59")


def test_service_principal_limits_and_anonymous_callers() -> None:
    plan = LimitPlan("e", limits({"key": "user", "calls": 1}, {"key": "service_principal", "calls": 3},
                                 {"key": "service_principal", "principal": "etl-app", "calls": 10}))
    assert admitted(plan, Principal("service_principal", "bot"), 0.0, 5) == 3
    assert admitted(plan, Principal("service_principal", "etl-app"), 0.0, 20) == 10
    assert admitted(plan, Principal("user", "etl-app"), 0.0, 3) == 1  # a user of the same name is not the SP
    assert admitted(plan, ANONYMOUS, 0.0, 3) == 1  # all anonymous callers are one user


def test_token_budget_refuses_while_spent_and_replicas_divide_limits() -> None:
    plan = LimitPlan("e", limits({"key": "endpoint", "tokens": 100}))
    first = plan.admit(user("a"), 0.0)
    first.charge(60, 1.0)
    second = plan.admit(user("a"), 2.0)  # 60 < 100: admitted, even though it will overshoot
    second.charge(60, 3.0)
    with pytest.raises(RateLimited) as info:
        plan.admit(user("a"), 4.0)
    assert "100 tokens per minute" in info.value.message
    plan.admit(user("a"), 60.0)  # renewed
    split = LimitPlan("e", limits({"key": "endpoint", "calls": 5}), replicas=2)
    assert admitted(split, user("a"), 0.0, 9) == 3  # ceil(5 / 2)


def test_zero_and_many_keys() -> None:
    plan = LimitPlan("e", limits({"key": "user", "calls": 0}))
    with pytest.raises(RateLimited) as info:
        plan.admit(user("a"), 0.0)
    assert info.value.headers["retry-after"] == "60"
    wide = LimitPlan("e", limits({"key": "user", "calls": 1}))
    for i in range(5000):  # old windows are swept: memory stays bounded
        wide.admit(user(f"u{i}"), float(i))
    assert len(wide.default_users[0]) < 2100


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
        assert 1 <= int(info.value.response.headers["retry-after"]) <= 60
        r = httpx.post(f"{proxy.url}/serving-endpoints/chat/invocations",
                       json={"messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 429
        assert r.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        assert 1 <= int(r.headers["retry-after"]) <= 60
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
    body = {"messages": [{"role": "user", "content": "one two three"}]}

    def status(name: str, who: dict[str, str], stream: bool = False) -> int:
        return httpx.post(f"{proxy.url}/serving-endpoints/{name}/invocations", json={**body, "stream": stream},
                          headers=who).status_code

    with run_proxy(tmp_path, [manifest, tokens], secrets=SECRETS, extra=IDENTITY) as proxy:
        alice = {"X-Forwarded-Email": "alice@example.com", "X-Forwarded-Groups": "support"}
        assert [status("chat", alice) for _ in range(4)] == [200, 200, 200, 429]
        bob = {"X-Forwarded-Email": "bob@example.com"}
        assert [status("chat", bob) for _ in range(2)] == [200, 429]
        carol = {"X-Forwarded-Email": "carol@example.com", "X-Forwarded-Groups": "support,other"}
        dave = {"X-Forwarded-Email": "dave@example.com", "X-Forwarded-Groups": "support"}
        assert [status("chat", carol), status("chat", dave), status("chat", carol)] == [200, 200, 429]
        # tokens: the stand-in's answer uses 3 + 5 tokens, over the budget of 5 after one call, streamed or not
        assert [status("tok", bob, stream=True), status("tok", bob)] == [200, 429]
        assert [status("tok", dave), status("tok", dave)] == [200, 429]
