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
from modelgate_proxy.stages.rate_limits.redis_counters import RedisCounters
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
        slots, _ = plan(100, 1000).slots_for(WHO)
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
        slots, _ = plan(100, 1000).slots_for(WHO)
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
