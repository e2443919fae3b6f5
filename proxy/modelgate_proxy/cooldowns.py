"""Served entities cooling down: an entity that answered 429 with a reset time is skipped by routing and
fallbacks until then (:mod:`.stages.traffic_split`, :mod:`.stages.fallbacks`), and its provider is not called.

One :class:`Cooldowns` per process holds the times, in the process (a dict lookup on the request path; an empty
dict when nothing cools down). With the Redis counter backend a :class:`CooldownShare` publishes each cool-down
to the other replicas and workers and merges theirs in (:mod:`.stages.backpressure.redis_cooldowns`), so a
429 seen by one replica is honoured by all within the share's sync interval.

A cool-down lasts at most :attr:`Cooldowns.max_seconds` (``--cooldown-max``), whatever the provider said.
"""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic
from typing import Protocol

DEFAULT_COOLDOWN_MAX = 60.0


class CooldownShare(Protocol):
    """Where cool-downs are shared between replicas (Redis); publishing never blocks the caller."""

    def publish(self, endpoint: str, entity: str, seconds: float) -> None: ...


class Cooldowns:
    __slots__ = ("_on_cool", "_until", "clock", "enabled", "max_seconds", "share")

    def __init__(self, *, max_seconds: float = DEFAULT_COOLDOWN_MAX, enabled: bool = True,
                 clock: Callable[[], float] = monotonic,
                 on_cool: Callable[[str, str, str], None] | None = None) -> None:
        self.max_seconds, self.enabled, self.clock = max_seconds, enabled, clock
        self._until: dict[tuple[str, str], float] = {}
        self._on_cool = on_cool
        self.share: CooldownShare | None = None

    def remaining(self, endpoint: str, entity: str) -> float:
        """Seconds ``entity`` of ``endpoint`` still cools down (0: usable)."""
        if not self._until:
            return 0.0
        until = self._until.get((endpoint, entity))
        if until is None:
            return 0.0
        left = until - self.clock()
        if left <= 0:
            del self._until[(endpoint, entity)]
            return 0.0
        return left

    def cool(self, endpoint: str, entity: str, seconds: float, reason: str = "429") -> float:
        """Cool ``entity`` down for ``seconds`` (at most :attr:`max_seconds`); returns the seconds applied (0 when
        cool-downs are off). Shared with the other replicas when a share is set."""
        if not self.enabled or seconds <= 0:
            return 0.0
        seconds = min(seconds, self.max_seconds)
        self.merge(endpoint, entity, seconds)
        if self._on_cool is not None:
            self._on_cool(endpoint, entity, reason)
        if self.share is not None:
            self.share.publish(endpoint, entity, seconds)
        return seconds

    def merge(self, endpoint: str, entity: str, seconds: float) -> None:
        """Learn a cool-down (from this process or another replica): the later end wins."""
        if not self.enabled or seconds <= 0:
            return
        until = self.clock() + min(seconds, self.max_seconds)
        key = (endpoint, entity)
        if until > self._until.get(key, 0.0):
            self._until[key] = until

    def active_any(self) -> bool:
        """Whether any entity may cool down now (the request path's one check: an empty dict is false)."""
        return bool(self._until)

    def active(self) -> int:
        """Entities cooling down now (for tests and /readyz)."""
        now = self.clock()
        return sum(1 for until in self._until.values() if until > now)
