"""The counting rules of ``aiGateway.rateLimits`` with a controlled clock, each against both counter backends:
the in-process one and the Redis one (a real redis-server, its clock replaced by the test's)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import pytest

from modelgate_proxy.exchange import ANONYMOUS, Principal
from modelgate_proxy.spec import RateLimit
from modelgate_proxy.stages.rate_limits.counters import CounterBackend, Refused, Ticket
from modelgate_proxy.stages.rate_limits.limit_plan import LimitPlan
from modelgate_proxy.stages.rate_limits.local_counters import LocalCounters
from modelgate_proxy.stages.rate_limits.redis_counters import RedisCounters
from modelgate_proxy.stages.rate_limits.redis_settings import RedisSettings


def limits(*items: dict[str, object]) -> list[RateLimit]:
    return [RateLimit.model_validate({"renewalPeriod": "minute", **item}) for item in items]


def user(name: str, *groups: str) -> Principal:
    return Principal("user", name, groups)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Counting:
    """A plan and a backend, driven synchronously."""

    def __init__(self, backend: CounterBackend, runner: asyncio.Runner, clock: Clock, plan: LimitPlan) -> None:
        self.backend, self.runner, self.clock, self.plan = backend, runner, clock, plan

    def at(self, t: float) -> Counting:
        self.clock.t = t
        return self

    def ask(self, who: Principal, tokens: int = 0) -> Ticket | Refused:
        slots = self.plan.limits_for(who)[0]
        return self.runner.run(self.backend.admit(slots, tokens))

    def admitted(self, who: Principal, n: int, tokens: int = 0) -> int:
        return sum(isinstance(self.ask(who, tokens), Ticket) for _ in range(n))

    def refused(self, who: Principal, tokens: int = 0) -> Refused:
        decision = self.ask(who, tokens)
        assert isinstance(decision, Refused), decision
        return decision

    def settle(self, ticket: Ticket | Refused, tokens: int) -> None:
        assert isinstance(ticket, Ticket)
        self.runner.run(self._settle(ticket, tokens))

    async def _settle(self, ticket: Ticket, tokens: int) -> None:
        self.backend.settle(ticket, tokens)
        if isinstance(self.backend, RedisCounters):
            await self.backend.flush()  # sent in the background


@pytest.fixture(params=["local", "redis"])
def make(request: pytest.FixtureRequest) -> Iterator[Any]:
    clock = Clock()
    with asyncio.Runner() as runner:
        if request.param == "local":
            backend: CounterBackend = LocalCounters(clock)
        else:
            url = request.getfixturevalue("redis_url")
            backend = RedisCounters(RedisSettings(url, prefix="test"), clock=clock)
            runner.run(backend.start())
        yield lambda *items, replicas=1: Counting(backend, runner, clock, LimitPlan("e", limits(*items), replicas))
        runner.run(backend.close())


def test_endpoint_calls_over_a_sliding_window(make: Any) -> None:
    c = make({"key": "endpoint", "calls": 3})
    assert c.at(100.0).admitted(user("a"), 2) == 2
    assert c.at(110.0).admitted(user("b"), 5) == 1  # shared by everyone
    refusal = c.at(130.5).refused(user("c"))
    assert refusal.meter.describe() == "3 calls per minute (endpoint)"
    assert 30.4 < refusal.wait <= 30.5  # the two calls of second 100 leave the window at 161
    assert c.at(161.0).admitted(user("c"), 4) == 2  # the call of second 110 still counts
    assert c.at(171.0).admitted(user("c"), 4) == 1


def test_no_window_edge_admits_twice_the_limit(make: Any) -> None:
    c = make({"key": "endpoint", "calls": 10})
    assert c.at(59.9).admitted(user("a"), 12) == 10
    for t in (60.1, 90.0, 119.9):  # a fixed window starting at 60 would admit 10 more here
        assert c.at(t).admitted(user("a"), 3) == 0
    assert c.at(120.0).admitted(user("a"), 12) == 10
    # any schedule: no 60-second interval holds more than the limit
    rng = random.Random(14)
    times = sorted(rng.uniform(200.0, 500.0) for _ in range(300))
    admitted = [t for t in times if isinstance(c.at(t).ask(user("a")), Ticket)]
    assert len(admitted) >= 40  # 300 s at 10 a minute, less up to 1 s per window
    assert max(sum(1 for u in admitted if t - 60 < u <= t) for t in admitted) == 10


def test_default_user_limit_is_per_user_and_a_principal_limit_takes_priority(make: Any) -> None:
    c = make({"key": "user", "calls": 2}, {"key": "user", "principal": "alice", "calls": 5},
             {"key": "user_group", "principal": "team", "calls": 1})
    assert c.admitted(user("bob"), 4) == 2
    assert c.admitted(user("carol"), 4) == 2
    assert c.admitted(user("alice", "team"), 9) == 5  # her own limit wins over the default and her group's
    assert c.admitted(user("dave", "team"), 3) == 1  # a group limit replaces the default for its members
    assert c.refused(user("dave", "team")).meter.scope == "group 'team'"
    assert c.refused(user("bob")).meter.scope == "user 'bob'"


def test_group_limit_is_shared_and_several_groups_refuse_only_when_all_are_spent(make: Any) -> None:
    c = make({"key": "user_group", "principal": "team", "calls": 3},
             {"key": "user_group", "principal": "ops", "calls": 1}, {"key": "user_group", "calls": 2})
    assert c.at(0.0).admitted(user("a", "team"), 2) == 2
    assert c.admitted(user("b", "team"), 2) == 1  # the third call of the shared budget
    assert c.at(1.0).admitted(user("c", "team", "ops"), 3) == 1  # still ops' call, then refused
    refusal = c.at(2.0).refused(user("c", "team", "ops"))
    assert refusal.meter.scope == "group 'team'"  # the group with room soonest (second 0)
    assert 58 < refusal.wait <= 59
    # a group without a limit of its own gets the user_group default, for itself
    assert c.admitted(user("x", "misc"), 3) == 2
    assert c.admitted(user("y", "misc", "other"), 5) == 2  # 'other' has its own default budget


def test_service_principals_anonymous_callers_and_endpoint_limits_together(make: Any) -> None:
    c = make({"key": "user", "calls": 1}, {"key": "service_principal", "calls": 3},
             {"key": "service_principal", "principal": "etl-app", "calls": 10}, {"key": "endpoint", "calls": 16})
    assert c.admitted(Principal("service_principal", "bot"), 5) == 3
    assert c.admitted(Principal("service_principal", "etl-app"), 20) == 10
    assert c.admitted(Principal("user", "etl-app"), 3) == 1  # a user of the same name is not the SP
    assert c.admitted(ANONYMOUS, 3) == 1  # all anonymous callers are one user
    assert c.admitted(Principal("user", "new"), 2) == 1  # the endpoint's 16th call
    assert c.refused(Principal("user", "newer")).meter.scope == "endpoint"
    only_users = make({"key": "user", "calls": 1})
    assert only_users.admitted(Principal("service_principal", "sp2"), 3) == 1  # no SP default: the user one


def test_token_reservations_hold_room_until_settled(make: Any) -> None:
    c = make({"key": "endpoint", "tokens": 100})
    first = c.at(0.0).ask(user("a"), tokens=60)
    assert isinstance(first, Ticket)
    assert first.reserved == 60
    refusal = c.refused(user("a"), tokens=60)  # 60 + 60 > 100 while the first answer is under way
    assert not refusal.too_large
    assert refusal.meter.describe() == "100 tokens per minute (endpoint)"
    c.at(5.0).settle(first, 30)  # it used 30: 70 free again
    second = c.ask(user("a"), tokens=60)
    assert isinstance(second, Ticket)
    assert c.refused(user("a"), tokens=20).wait > 50  # 90 used
    too_large = c.refused(user("a"), tokens=101)
    assert too_large.too_large
    c.settle(second, 70)  # more than reserved: charged
    assert c.at(59.0).refused(user("a"), tokens=1).meter.measure == "t"
    assert isinstance(c.at(66.0).ask(user("a"), tokens=100), Ticket)  # both left the window


def test_a_settlement_after_the_window_charges_an_excess_to_the_current_second(make: Any) -> None:
    c = make({"key": "user", "tokens": 100})
    ticket = c.at(0.0).ask(user("a"), tokens=10)
    c.at(70.0).settle(ticket, 50)  # its bucket has left the window: the 40 over count from now
    assert isinstance(c.ask(user("a"), tokens=60), Ticket)
    assert c.refused(user("a"), tokens=1).meter.scope == "user 'a'"
    refund = c.at(200.0).ask(user("a"), tokens=10)
    c.at(300.0).settle(refund, 0)  # a refund for a bucket that left the window: nothing to give back
    assert isinstance(c.ask(user("a"), tokens=100), Ticket)


def test_zero_limits_and_per_replica_limits(make: Any) -> None:
    c = make({"key": "user", "calls": 0})
    assert c.refused(user("a")).wait == 60.0
    split = make({"key": "endpoint", "calls": 5}, replicas=2)
    assert split.admitted(user("a"), 9) == 3  # ceil(5 / 2)
    assert split.refused(user("a")).meter.configured == 5


def test_two_limits_on_one_count_enforce_the_stricter(make: Any) -> None:
    c = make({"key": "endpoint", "calls": 5}, {"key": "endpoint", "calls": 2, "tokens": 1000})
    assert c.admitted(user("a"), 5, tokens=10) == 2


def test_in_process_memory_follows_the_active_callers() -> None:
    clock = Clock()
    backend = LocalCounters(clock)
    plan = LimitPlan("e", limits({"key": "user", "calls": 1}))
    for i in range(5000):  # counters whose window is empty are swept
        clock.t = float(i)
        backend.admit_now(plan.limits_for(user(f"u{i}"))[0], 0)
    assert len(backend) < 2100


def test_redis_keys_expire_by_themselves_and_settlements_go_in_batches(redis_url: str, redis_server: Any) -> None:
    async def run() -> None:
        backend = RedisCounters(RedisSettings(redis_url, prefix="ttl"))
        await backend.start()
        plan = LimitPlan("chat", limits({"key": "user", "calls": 3, "tokens": 500}, {"key": "endpoint", "calls": 9}))
        other = LimitPlan("embed", limits({"key": "endpoint", "tokens": 500}))
        tickets = [await backend.admit(plan.limits_for(user("alice"))[0], 40) for _ in range(2)]
        tickets.append(await backend.admit(other.limits_for(user("alice"))[0], 40))
        for ticket, used in zip(tickets, (25, 10, 70), strict=True):
            assert isinstance(ticket, Ticket)
            backend.settle(ticket, used)  # queued: one script call per endpoint
        await backend.flush()
        await backend.close()

    asyncio.run(run())
    client = redis_server.client()
    keys = sorted(k.decode() for k in client.keys("ttl:*"))
    assert keys == ["ttl:{chat}:endpoint", "ttl:{chat}:user:alice", "ttl:{embed}:endpoint"]
    for key in keys:
        assert 0 < client.pttl(key) <= 62_000

    def values(key: str) -> dict[str, int]:  # summed over the seconds (buckets)
        out: dict[str, int] = {}
        for field, value in client.hgetall(key).items():
            out[field.decode()[0]] = out.get(field.decode()[0], 0) + int(value)
        return out

    assert values("ttl:{chat}:user:alice") == {"c": 2, "t": 35}  # two calls, reservations settled to 25 + 10
    assert values("ttl:{chat}:endpoint") == {"c": 2}
    assert values("ttl:{embed}:endpoint") == {"t": 70}
