"""Fixed-window counters for ``aiGateway.rateLimits`` (calls and tokens per minute), and the plan that picks the
counters a caller is held to.

A window starts at the first use of its counter and lasts ``period`` seconds; the next use after that starts a
new one (windows of different keys are not aligned to the clock, so they do not all renew at once). Calls are
counted on admission; tokens are charged when the answer is over, and a request is refused while a token budget
of the current window is spent (``used >= limit``).

Which limits apply to a caller (Databricks' rules):

- every ``endpoint`` limit, for all traffic;
- a limit for this very user or service principal (``principal`` set) takes priority over group and default
  limits; else
- the limits of the caller's groups (``user_group`` with that ``principal``, or a ``user_group`` default without
  one, which every group gets for itself), shared by the group's members; a caller in several limited groups
  is refused only when every one of them is spent, and is charged to the first that has room; else
- the default per-caller limit: ``service_principal`` without ``principal`` for service principals, ``user``
  without ``principal`` for users (and for service principals without a default of their own).

Anonymous callers are one user named ``anonymous``. State is per process (one replica): with
``replicas`` > 1 each replica allows ``ceil(limit / replicas)``.

All of it is synchronous: the event loop never switches task inside a check-and-count, so no lock is needed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from ...errors import RateLimited
from ...exchange import Principal
from ...spec import RateLimit

PERIOD_SECONDS = {"minute": 60.0}


class Window:
    """One fixed-window counter."""

    __slots__ = ("limit", "period", "start", "used")

    def __init__(self, limit: int, period: float) -> None:
        self.limit, self.period = limit, period
        self.start = -math.inf
        self.used = 0

    def _roll(self, now: float) -> None:
        if now >= self.start + self.period:
            self.start, self.used = now, 0

    def has_room(self, now: float) -> bool:
        self._roll(now)
        return self.used < self.limit

    def add(self, amount: int, now: float) -> None:
        self._roll(now)
        self.used += amount

    def retry_after(self, now: float) -> float:
        return max(0.0, self.start + self.period - now)

    def expired(self, now: float) -> bool:
        return now >= self.start + self.period


@dataclass(frozen=True, slots=True)
class Quota:
    """A limit as configured, and per replica."""

    scope: str
    """What it counts against, for messages: ``endpoint``, ``user 'x'``, ``group 'g'``, ..."""
    calls: int | None
    tokens: int | None
    configured_calls: int | None
    configured_tokens: int | None
    period: float


class Counters:
    """The windows of one quota for one key."""

    __slots__ = ("calls", "quota", "tokens")

    def __init__(self, quota: Quota) -> None:
        self.quota = quota
        self.calls = Window(quota.calls, quota.period) if quota.calls is not None else None
        self.tokens = Window(quota.tokens, quota.period) if quota.tokens is not None else None

    def refusal(self, now: float) -> tuple[str, float] | None:
        """Why this key has no room (and seconds until its window ends), or ``None``."""
        q = self.quota
        if self.calls is not None and not self.calls.has_room(now):
            return f"{q.configured_calls} calls per minute ({q.scope})", self.calls.retry_after(now)
        if self.tokens is not None and not self.tokens.has_room(now):
            return f"{q.configured_tokens} tokens per minute ({q.scope})", self.tokens.retry_after(now)
        return None

    def expired(self, now: float) -> bool:
        return all(w is None or w.expired(now) for w in (self.calls, self.tokens))


class KeyedCounters:
    """A quota that every key (user, group, ...) gets for itself; expired keys are swept now and then."""

    __slots__ = ("_by_key", "_sweep_at", "quota", "scope_kind")

    def __init__(self, quota: Quota, scope_kind: str) -> None:
        self.quota, self.scope_kind = quota, scope_kind
        self._by_key: dict[str, Counters] = {}
        self._sweep_at = 1024

    def get(self, key: str, now: float) -> Counters:
        counters = self._by_key.get(key)
        if counters is None:
            if len(self._by_key) >= self._sweep_at:
                self._sweep(now)
            q = self.quota
            counters = self._by_key[key] = Counters(
                Quota(f"{self.scope_kind} {key!r}", q.calls, q.tokens, q.configured_calls, q.configured_tokens,
                      q.period))
        return counters

    def _sweep(self, now: float) -> None:
        for key in [k for k, c in self._by_key.items() if c.expired(now)]:
            del self._by_key[key]
        self._sweep_at = max(1024, 2 * len(self._by_key))

    def __len__(self) -> int:
        return len(self._by_key)


@dataclass(slots=True)
class Admission:
    """The counters a request was admitted under: its tokens are charged to them when the answer is over."""

    token_counters: list[Counters]

    def charge(self, tokens: int, now: float) -> None:
        for counters in self.token_counters:
            if counters.tokens is not None:
                counters.tokens.add(tokens, now)


def per_replica(limit: int | None, replicas: int) -> int | None:
    return None if limit is None else math.ceil(limit / replicas)


class LimitPlan:
    """The compiled ``rateLimits`` of one endpoint."""

    def __init__(self, endpoint: str, limits: Iterable[RateLimit], replicas: int = 1) -> None:
        if replicas < 1:
            raise ValueError("replicas must be at least 1")
        self.endpoint = endpoint
        self.endpoint_counters: list[Counters] = []
        self.users: dict[str, list[Counters]] = {}
        self.service_principals: dict[str, list[Counters]] = {}
        self.groups: dict[str, list[Counters]] = {}
        self.default_users: list[KeyedCounters] = []
        self.default_service_principals: list[KeyedCounters] = []
        self.default_groups: list[KeyedCounters] = []
        self.counts_tokens = False
        for limit in limits:
            key = limit.key or "endpoint"
            scope = {"endpoint": "endpoint", "user": "user", "user_group": "group",
                     "service_principal": "service principal"}[key]
            if limit.principal is not None:
                scope = f"{scope} {limit.principal!r}"
            elif key != "endpoint":
                scope = f"{scope} (default)"
            quota = Quota(scope, per_replica(limit.calls, replicas), per_replica(limit.tokens, replicas),
                          limit.calls, limit.tokens, PERIOD_SECONDS[limit.renewal_period])
            self.counts_tokens = self.counts_tokens or quota.tokens is not None
            if key == "endpoint":
                self.endpoint_counters.append(Counters(quota))
                continue
            named = {"user": self.users, "service_principal": self.service_principals, "user_group": self.groups}
            defaults = {"user": self.default_users, "service_principal": self.default_service_principals,
                        "user_group": self.default_groups}
            if limit.principal is not None:
                named[key].setdefault(limit.principal, []).append(Counters(quota))
            else:
                kind = {"user": "user", "service_principal": "service principal", "user_group": "group"}[key]
                defaults[key].append(KeyedCounters(quota, kind))

    def admit(self, principal: Principal, now: float) -> Admission:
        """Count one call against every limit that applies to ``principal``, or raise :class:`RateLimited`."""
        applicable = list(self.endpoint_counters)
        applicable.extend(self._caller_counters(principal, now))
        refusals = [r for r in (c.refusal(now) for c in applicable) if r is not None]
        if refusals:
            raise self._refuse(refusals)
        for counters in applicable:
            if counters.calls is not None:
                counters.calls.add(1, now)
        return Admission([c for c in applicable if c.tokens is not None])

    def _caller_counters(self, principal: Principal, now: float) -> list[Counters]:
        if principal.kind == "service_principal":
            specific = self.service_principals.get(principal.name)
        else:
            specific = self.users.get(principal.name)
        if specific is not None:
            return specific
        group_sets = self._group_counters(principal, now)
        if group_sets:
            for counters in group_sets:
                if all(c.refusal(now) is None for c in counters):
                    return counters
            # every group is spent: refuse with the group whose window ends first
            return min(group_sets, key=lambda cs: _soonest(cs, now))
        defaults = self.default_users
        if principal.kind == "service_principal" and self.default_service_principals:
            defaults = self.default_service_principals
        return [keyed.get(principal.name, now) for keyed in defaults]

    def _group_counters(self, principal: Principal, now: float) -> list[list[Counters]]:
        if not principal.groups or not (self.groups or self.default_groups):
            return []
        out: list[list[Counters]] = []
        for group in principal.groups:
            specific = self.groups.get(group)
            if specific is not None:
                out.append(specific)
            elif self.default_groups:
                out.append([keyed.get(group, now) for keyed in self.default_groups])
        return out

    def _refuse(self, refusals: list[tuple[str, float]]) -> RateLimited:
        what, wait = max(refusals, key=lambda r: r[1])
        seconds = max(1, math.ceil(wait))
        return RateLimited(
            f"rate limit exceeded on the endpoint {self.endpoint!r}: {what}; retry in {seconds} s",
            headers={"retry-after": str(seconds)},
        )


def _soonest(counters: list[Counters], now: float) -> float:
    waits = [r[1] for r in (c.refusal(now) for c in counters) if r is not None]
    return max(waits) if waits else 0.0
