"""The Redis backend's admission batching, against a real redis-server: admissions arriving together share one
script call and are still decided one after the other (the limit holds exactly); a caller that leaves while its
admission waits gets its reservation back."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from modelgate_proxy.exchange import Principal
from modelgate_proxy.spec import RateLimit
from modelgate_proxy.stages.rate_limits.counters import Refused, Ticket
from modelgate_proxy.stages.rate_limits.limit_plan import LimitPlan
from modelgate_proxy.stages.rate_limits.redis_counters import ENCODED_CACHE, RedisCounters
from modelgate_proxy.stages.rate_limits.redis_settings import RedisSettings

WHO = Principal("user", "a", ())


def plan(calls: int, tokens: int) -> LimitPlan:
    limit = RateLimit.model_validate({"key": "endpoint", "calls": calls, "tokens": tokens, "renewalPeriod": "minute"})
    return LimitPlan("e", [limit], 1)


async def script_calls(url: str) -> int:
    client = Redis.from_url(url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0)) + int(stats.get("cmdstat_eval", {}).get("calls", 0))


def test_concurrent_admissions_share_script_calls_and_hold_the_limit_exactly(redis_url: str) -> None:
    async def main() -> None:
        backend = RedisCounters(RedisSettings(redis_url, prefix="batch"), clock=lambda: 1000.0)
        await backend.start()
        slots = plan(100, 1000).limits_for(WHO)[0]
        before = await script_calls(redis_url)
        decisions = await asyncio.gather(*(backend.admit(slots, 50) for _ in range(30)))
        calls = await script_calls(redis_url) - before
        await backend.close()
        admitted = [d for d in decisions if isinstance(d, Ticket)]
        refused = [d for d in decisions if isinstance(d, Refused)]
        print(f"\n30 concurrent admissions of 50 tokens, limit 1000: {len(admitted)} admitted, {calls} script calls")
        assert len(admitted) == 20  # 20 x 50 = 1000 tokens: not one more
        assert len(refused) == 10
        assert all(r.meter.measure == "t" for r in refused)
        assert 1 <= calls <= 3  # one call for all (a few if the loop split them), never one per admission

    asyncio.run(main())


def test_a_caller_leaving_while_its_admission_waits_gets_its_reservation_back(redis_url: str) -> None:
    async def main() -> None:
        backend = RedisCounters(RedisSettings(redis_url, prefix="leave"), clock=lambda: 1000.0)
        await backend.start()
        slots = plan(100, 1000).limits_for(WHO)[0]
        leaving = asyncio.create_task(backend.admit(slots, 1000))
        await asyncio.sleep(0)  # queued for the script call
        leaving.cancel()
        await asyncio.sleep(0.2)  # the call answers (admitted) and the refund is queued
        await backend.flush()
        again = await backend.admit(slots, 1000)
        await backend.close()
        assert leaving.cancelled()
        assert isinstance(again, Ticket), again  # the 1000 tokens of the caller that left were given back

    asyncio.run(main())


def test_a_batch_sends_its_distinct_keys_once_and_users_of_different_keys_are_counted_apart(redis_url: str) -> None:
    user_limit = RateLimit.model_validate({"key": "user", "calls": 3, "renewalPeriod": "minute"})
    endpoint_limit = RateLimit.model_validate({"key": "endpoint", "calls": 100, "renewalPeriod": "minute"})
    per_user = LimitPlan("mixed", [endpoint_limit, user_limit], 1)
    alice, bob = Principal("user", "alice", ()), Principal("user", "bob", ())

    async def main() -> tuple[list[Ticket | Refused], list[int]]:
        backend = RedisCounters(RedisSettings(redis_url, prefix="mixed"), clock=lambda: 1000.0)
        await backend.start()
        sent: list[int] = []
        script = backend._admit

        async def counting(*, keys: list[str], args: list[str]) -> object:
            sent.append(len(keys))
            return await script(keys=keys, args=args)

        backend._admit = counting
        who = [alice, bob] * 5  # one batch: 10 admissions over 3 distinct keys (the endpoint, alice, bob)
        decisions = await asyncio.gather(*(backend.admit(per_user.limits_for(p)[0], 0) for p in who))
        await backend.close()
        return list(decisions), sent

    decisions, sent = asyncio.run(main())
    assert sent[0] == 3  # the endpoint's hash, alice's and bob's: each once, not once per admission
    by_user = {"alice": [d for d, p in zip(decisions, [alice, bob] * 5, strict=True) if p is alice],
               "bob": [d for d, p in zip(decisions, [alice, bob] * 5, strict=True) if p is bob]}
    for name, mine in by_user.items():  # 3 calls each, counted on each one's own key
        assert [isinstance(d, Ticket) for d in mine] == [True, True, True, False, False], name
        assert all(d.meter.scope == f"user {name!r}" for d in mine if isinstance(d, Refused))


def test_the_slot_encodings_are_cached_by_identity_and_bounded(redis_url: str) -> None:
    async def main() -> tuple[int, int, bool]:
        backend = RedisCounters(RedisSettings(redis_url, prefix="cache"), clock=lambda: 1000.0)
        many = LimitPlan("e", [RateLimit.model_validate({"key": "user", "calls": 5, "renewalPeriod": "minute"})], 1)
        for i in range(ENCODED_CACHE + 10):
            backend._encode(many.limits_for(Principal("user", f"u{i}", ()))[0])
        size = len(backend._encoded)
        slots = many.limits_for(WHO)[0]
        first = backend._encode(slots)
        equal_copy = tuple(tuple(tuple(alt) for alt in slot) for slot in slots)  # equal, not the same tuples
        again = backend._encode(equal_copy)
        await backend.close()
        return size, ENCODED_CACHE, first == again and first is not again

    size, bound, same_encoding = asyncio.run(main())
    assert size <= bound
    assert size > 0
    assert same_encoding  # an equal copy is encoded again, to the same keys and JSON


def test_a_batch_counts_on_top_of_earlier_buckets_exactly(redis_url: str) -> None:
    now = [1000.0]

    async def main() -> tuple[int, int, int]:
        backend = RedisCounters(RedisSettings(redis_url, prefix="layers"), clock=lambda: now[0])
        await backend.start()
        slots = plan(10, 1000).limits_for(WHO)[0]
        first = await asyncio.gather(*(backend.admit(slots, 30) for _ in range(4)))  # 4 calls, 120 tokens
        now[0] = 1030.0  # same window, a later bucket: the batch reads both buckets once and counts on
        second = await asyncio.gather(*(backend.admit(slots, 100) for _ in range(12)))
        now[0] = 1061.5  # the first bucket has left the window: its 4 calls and 120 tokens are free again
        third = await asyncio.gather(*(backend.admit(slots, 30) for _ in range(6)))
        await backend.close()
        return tuple(sum(isinstance(d, Ticket) for d in ds) for ds in (first, second, third))  # type: ignore[return-value]

    # 880 tokens left after the first: 8 of 100 fit (calls: 4 + 8 = 12 > 10, so the calls limit decides: 6)
    assert asyncio.run(main()) == (4, 6, 4)  # then 6 calls of the second bucket stay: 4 more calls fit
