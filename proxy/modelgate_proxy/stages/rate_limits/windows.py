"""The sliding window both counter backends count over (the Redis one in Lua, :mod:`.redis_scripts`).

Time is cut into buckets of :data:`BUCKET_SECONDS` (1 s); a counter keeps one amount per bucket. At time ``t``
(bucket ``b = floor(t)``) the window is the current bucket and the :data:`SPAN` - 1 (60) before it, i.e. the time
from ``b - 60`` to ``t``: at least the last 60 s, at most 61 s. An amount (1 call, or a reservation of tokens)
is admitted only when ``used + amount <= limit``, and is then added to bucket ``b``.

**The bound.** Take any 60-second interval and the last amount admitted in it, at ``t``: every earlier amount of
the interval lay in ``(t - 60, t]``, inside the window checked at ``t``, so the amounts admitted in any 60 s sum
to at most the limit. This is the sliding-window guarantee, not a fixed window's (which admits up to twice the
limit across the edge between two windows). The price of the buckets: a count leaves the window up to 1 s
later than 60 s after it was made, so a caller may wait up to 1 s longer than an exact log would make it.
Memory: at most :data:`SPAN` buckets per counter, whatever the traffic.
"""

from __future__ import annotations

import math
from collections import deque

BUCKET_SECONDS = 1
PERIOD_SECONDS = 60
SPAN = PERIOD_SECONDS // BUCKET_SECONDS + 1
"""Buckets in a window: the current one and the 60 before it."""


def bucket_of(now: float) -> int:
    return math.floor(now / BUCKET_SECONDS)


class SlidingWindow:
    """One counter: ``[bucket, amount]`` pairs, oldest first, and their sum."""

    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.buckets: deque[list[int]] = deque()
        self.total = 0

    def used(self, bucket: int) -> int:
        """The sum over the window ending in ``bucket`` (older buckets are dropped)."""
        buckets, oldest = self.buckets, bucket - SPAN + 1
        while buckets and buckets[0][0] < oldest:
            self.total -= buckets.popleft()[1]
        return self.total

    def add(self, bucket: int, amount: int) -> None:
        buckets = self.buckets
        if buckets and buckets[-1][0] == bucket:
            buckets[-1][1] += amount
        else:
            buckets.append([bucket, amount])
        self.total += amount

    def adjust(self, bucket: int, delta: int, now_bucket: int) -> None:
        """Settle a reservation made in ``bucket`` by ``delta`` (negative: tokens given back). A bucket already
        out of the window takes nothing back; an excess over it is charged to the current bucket."""
        self.used(now_bucket)
        for entry in reversed(self.buckets):
            if entry[0] == bucket:
                new = max(0, entry[1] + delta)
                self.total += new - entry[1]
                entry[1] = new
                return
            if entry[0] < bucket:
                break
        if delta > 0:
            self.add(now_bucket, delta)

    def wait(self, now: float, amount: int, limit: int) -> float:
        """Seconds until ``amount`` fits under ``limit`` if nothing else is admitted (``amount <= limit``)."""
        need = self.used(bucket_of(now)) + amount - limit
        freed = 0
        for bucket, value in self.buckets:
            freed += value
            if freed >= need:
                return max(0.0, (bucket + SPAN) * BUCKET_SECONDS - now)
        return float(PERIOD_SECONDS)

    def empty(self, bucket: int) -> bool:
        return self.used(bucket) == 0
