"""A bounded cache of check results: at most ``max_entries``, each kept ``ttl`` seconds (``negative_ttl`` for a
refusal), least recently used evicted first. Concurrent lookups of one key share one remote call, so a burst of
requests with a new credential asks the API server or issuer once.

Keys are digests (a credential's SHA-256) or tuples of non-secret names, never a credential. Errors are not
cached: the next request asks again.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_TTL = 300.0
"""No cached result lives longer than this, whatever is configured (revocation must take effect)."""


@dataclass(frozen=True, slots=True)
class CacheBounds:
    max_entries: int = 10_000
    ttl: float = 10.0
    """Seconds a positive result (authenticated, allowed) is reused."""
    negative_ttl: float = 2.0
    """Seconds a negative result (refused, denied) is reused."""

    def __post_init__(self) -> None:
        if self.max_entries < 1:
            raise ValueError("a cache holds at least one entry")
        for name, value in (("ttl", self.ttl), ("negative_ttl", self.negative_ttl)):
            if not 0 <= value <= MAX_TTL:
                raise ValueError(f"{name} must be between 0 and {MAX_TTL:.0f} seconds, not {value}")


class TtlCache(Generic[K, V]):
    __slots__ = ("_clock", "_entries", "_inflight", "bounds")

    def __init__(self, bounds: CacheBounds, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.bounds = bounds
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._inflight: dict[K, asyncio.Future[V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> tuple[bool, V | None]:
        """``(True, value)`` for a live entry, ``(False, None)`` otherwise."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        expires, value = entry
        if self._clock() >= expires:
            del self._entries[key]
            return False, None
        self._entries.move_to_end(key)
        return True, value

    def put(self, key: K, value: V, *, positive: bool, max_age: float | None = None) -> None:
        ttl = self.bounds.ttl if positive else self.bounds.negative_ttl
        if max_age is not None:
            ttl = min(ttl, max_age)
        if ttl <= 0:
            self._entries.pop(key, None)
            return
        self._entries[key] = (self._clock() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.bounds.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    async def get_or_load(
        self,
        key: K,
        load: Callable[[], Awaitable[tuple[V, bool, float | None]]],
    ) -> V:
        """The cached value, or ``load()``'s; ``load`` returns ``(value, positive, max_age)``. One ``load`` per key
        at a time: concurrent callers await the same result (or the same error)."""
        while True:
            hit, value = self.get(key)
            if hit:
                return value  # type: ignore[return-value]
            pending = self._inflight.get(key)
            if pending is None:
                return await self._load(key, load)
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not pending.cancelled() or (task is not None and task.cancelling()):
                    raise
                # the loading request was cancelled (its caller went away), not this one: try again

    async def _load(self, key: K, load: Callable[[], Awaitable[tuple[V, bool, float | None]]]) -> V:
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value, positive, max_age = await load()
        except Exception as e:
            future.set_exception(e)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        except BaseException:
            future.cancel()
            raise
        else:
            self.put(key, value, positive=positive, max_age=max_age)
            future.set_result(value)
            return value
        finally:
            del self._inflight[key]
