"""Traffic split (``trafficConfig``): a weighted random first choice per request, then the rest in served-entity
order; :class:`TrafficSplit` is the stage that sets ``ex.entity`` and ``ex.order``.

An entity with 0 % never gets first-choice traffic; it is reached only as a fallback. The order after the first
choice is the served-entity list order, which is what fallbacks follow.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Sequence

from ..exchange import Exchange, Next, Result


class TrafficSplitter:
    """Precomputed per endpoint; :meth:`order` is the only per-request call."""

    __slots__ = ("_cumulative", "_orders", "_rand", "_total")

    def __init__(self, percentages: Sequence[int], *, rng: random.Random | None = None) -> None:
        """``percentages[i]`` is the share of served entity ``i`` (list order)."""
        if not percentages:
            raise ValueError("an endpoint needs at least one served entity")
        weighted = [(i, p) for i, p in enumerate(percentages) if p > 0]
        if not weighted:
            raise ValueError("at least one served entity needs a traffic percentage above 0")
        self._total = sum(p for _, p in weighted)
        acc = 0
        self._cumulative: list[tuple[int, int]] = []
        for i, p in weighted:
            acc += p
            self._cumulative.append((acc, i))
        n = len(percentages)
        # One precomputed order per possible first choice: first, then the others in list order.
        self._orders: dict[int, tuple[int, ...]] = {
            i: (i, *(j for j in range(n) if j != i)) for i, _ in weighted
        }
        self._rand = (rng or random.Random()).random  # noqa: S311 (traffic split, not cryptography)

    def first(self) -> int:
        """Index of the first-choice entity."""
        if len(self._cumulative) == 1:
            return self._cumulative[0][1]
        point = self._rand() * self._total
        k = bisect_right(self._cumulative, point, key=lambda item: item[0])
        return self._cumulative[min(k, len(self._cumulative) - 1)][1]

    def order(self) -> tuple[int, ...]:
        """All entity indexes: the weighted first choice, then the rest in list order."""
        return self._orders[self.first()]


class TrafficSplit:
    """The stage: pick the served entity by the endpoint's traffic split, and the order of the others."""

    __slots__ = ("splitter",)

    def __init__(self, splitter: TrafficSplitter) -> None:
        self.splitter = splitter

    async def __call__(self, ex: Exchange, call_next: Next) -> Result:
        ex.order = order = self.splitter.order()
        ex.entity = ex.endpoint.entities[order[0]]
        return await call_next(ex)
