"""Traffic split (``trafficConfig``): a weighted random first choice per request, then the rest in served-entity
order; :class:`TrafficSplit` is the stage that sets ``ex.entity`` and ``ex.order``.

An entity with 0 % never gets first-choice traffic; it is reached only as a fallback. The order after the first
choice is the served-entity list order, which is what fallbacks follow.

Entities cooling down (:mod:`modelgate_proxy.cooldowns`) are not chosen: the weighted choice is made among the
others (their shares keep their proportions), and the cooled ones go to the end of the order. When every entity
with a share cools down, the request goes to the first other entity with fallbacks on, and is refused with a
429 and ``retry-after`` (the shortest cool-down left) otherwise. Without a cool-down this costs one check of an
empty dict per request.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Sequence

from ..cooldowns import Cooldowns
from ..errors import ProvidersCooledDown
from ..exchange import Exchange, Next, Result


class TrafficSplitter:
    """Precomputed per endpoint; :meth:`order` is the only per-request call."""

    __slots__ = ("_cumulative", "_n", "_orders", "_rand", "_total", "_weights")

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
        self._weights = list(weighted)
        self._n = n

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

    def order_without(self, cooled: frozenset[int]) -> tuple[int, ...] | None:
        """The order with the entities ``cooled`` avoided: a weighted first choice among the others with a share,
        then the rest in list order, the cooled ones last; ``None`` when every entity with a share is cooled."""
        usable = [(i, p) for i, p in self._weights if i not in cooled]
        if not usable:
            return None
        point = self._rand() * sum(p for _, p in usable)
        first = usable[-1][0]
        for i, p in usable:
            point -= p
            if point < 0:
                first = i
                break
        rest = [j for j in range(self._n) if j != first and j not in cooled]
        return (first, *rest, *(j for j in range(self._n) if j in cooled))


class TrafficSplit:
    """The stage: pick the served entity by the endpoint's traffic split, and the order of the others."""

    __slots__ = ("cooldowns", "fallbacks", "splitter")

    def __init__(self, splitter: TrafficSplitter, cooldowns: Cooldowns | None = None, *,
                 fallbacks: bool = False) -> None:
        self.splitter = splitter
        self.cooldowns = cooldowns
        """Set when the endpoint cools entities down; ``fallbacks``: whether 0 % entities may take over."""
        self.fallbacks = fallbacks

    async def __call__(self, ex: Exchange, call_next: Next) -> Result:
        ex.order = order = self.splitter.order()
        cooldowns = self.cooldowns
        if cooldowns is not None and cooldowns.active_any():
            order = self._avoiding(ex, cooldowns)
            ex.order = order
        ex.entity = ex.endpoint.entities[order[0]]
        return await call_next(ex)

    def _avoiding(self, ex: Exchange, cooldowns: Cooldowns) -> tuple[int, ...]:
        name = ex.endpoint.name
        left = {e.index: t for e in ex.endpoint.entities if (t := cooldowns.remaining(name, e.name)) > 0}
        if not left:
            return ex.order
        order = self.splitter.order_without(frozenset(left))
        if order is not None:
            return order
        others = [i for i in range(len(ex.endpoint.entities)) if i not in left]
        if self.fallbacks and others:
            return (*others, *left)
        raise ProvidersCooledDown(f"every served entity of {name!r} is cooling down after its provider's 429",
                                  min(left.values()))
