"""The default output reservation (no ``max_tokens``) is capped at what the tightest token limit leaves; a
caller's own ``max_tokens`` never is."""

from __future__ import annotations

from modelgate_proxy.exchange import Principal
from modelgate_proxy.spec import RateLimit
from modelgate_proxy.stages.rate_limits import limit_plan
from modelgate_proxy.stages.rate_limits.counters import Meter
from modelgate_proxy.stages.rate_limits.limit_plan import token_cap as _token_cap
from modelgate_proxy.stages.rate_limits.reservation import reservation

CHAT = "llm/v1/chat"
BODY = {"messages": [{"role": "user", "content": "x" * 39}]}  # (39 + 1) / 4 = 10 estimated prompt tokens


def meter(measure: str, limit: int) -> Meter:
    return Meter(key=f"k{measure}{limit}", measure=measure, limit=limit, configured=limit, scope="endpoint")  # type: ignore[arg-type]


def test_default_is_capped_at_the_limit_left_after_the_prompt() -> None:
    r = reservation(CHAT, BODY, 1024, cap=100)
    assert (r.prompt, r.output, r.tokens) == (10, 90, 100)
    assert "capped at the token limit" in r.output_from
    assert reservation(CHAT, BODY, 1024, cap=None).tokens == 1034
    assert reservation(CHAT, BODY, 50, cap=100).tokens == 60  # under the cap: unchanged


def test_a_callers_max_tokens_is_never_capped() -> None:
    assert reservation(CHAT, {**BODY, "max_tokens": 500}, 1024, cap=100).tokens == 510


def test_a_prompt_over_the_cap_still_reserves_its_estimate() -> None:
    assert reservation(CHAT, BODY, 1024, cap=4).tokens == 10


def test_cap_is_the_tightest_slot_of_the_roomiest_alternatives() -> None:
    calls_only = (meter("c", 5),)
    assert _token_cap(((calls_only,),)) is None
    groups = ((meter("t", 100),), (meter("t", 300), meter("c", 2)))  # two groups: the roomier one decides
    endpoint = ((meter("t", 200),),)
    assert _token_cap((groups,)) == 300
    assert _token_cap((groups, endpoint)) == 200
    assert _token_cap((((meter("t", 100),), calls_only),)) is None  # an alternative without a token limit


def test_the_plan_keeps_each_principals_limits_and_token_cap_and_is_bounded() -> None:
    plan = limit_plan.LimitPlan("e", [RateLimit.model_validate(
        {"key": "user", "calls": 5, "tokens": 700, "renewalPeriod": "minute"})], 1)
    alice = Principal("user", "alice", ())
    slots, counts_tokens, cap = plan.limits_for(alice)
    assert counts_tokens
    assert cap == 700 == _token_cap(slots)
    assert plan.limits_for(alice)[0] is slots  # cached: the same tuples (the Redis backend's cache keys on them)
    for i in range(limit_plan._CACHE_SIZE + 5):
        plan.limits_for(Principal("user", f"u{i}", ()))
    assert len(plan._cache) <= limit_plan._CACHE_SIZE
