"""Rate limits (``aiGateway.rateLimits``): admit the call under every limit that applies to the caller, or
answer 429 with ``retry-after``; charge the answer's tokens (estimated where the provider gave none) to the
token budgets when the answer is over. The counting rules are in :mod:`.counters`."""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic

from ...errors import RateLimited
from ...exchange import ANONYMOUS, Exchange, Next, Outcome, Result
from .counters import Admission, LimitPlan


class RateLimits:
    __slots__ = ("on_refusal", "plan")

    def __init__(self, plan: LimitPlan, on_refusal: Callable[[], None] | None = None) -> None:
        self.plan = plan
        self.on_refusal = on_refusal

    async def __call__(self, ex: Exchange, call_next: Next) -> Result:
        try:
            admission = self.plan.admit(ex.principal or ANONYMOUS, monotonic())
        except RateLimited:
            if self.on_refusal is not None:
                self.on_refusal()
            raise
        if admission.token_counters:
            ex.on_finish(_TokenCharge(admission))
        return await call_next(ex)


class _TokenCharge:
    __slots__ = ("admission",)

    def __init__(self, admission: Admission) -> None:
        self.admission = admission

    def __call__(self, ex: Exchange, outcome: Outcome) -> None:
        if outcome.usage is not None and outcome.usage.total:
            self.admission.charge(outcome.usage.total, monotonic())
