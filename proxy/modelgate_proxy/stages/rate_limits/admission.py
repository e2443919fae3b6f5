"""Rate limits (``aiGateway.rateLimits``), the stage: admit the call under every limit that applies to the caller
(:mod:`.limit_plan`), reserving its estimated tokens (:mod:`.reservation`) on the token budgets, or answer 429
with ``retry-after`` naming the limit; when the answer is over (whole or streamed; completed, cut or failed),
settle the reservation to the tokens really used: the provider's ``usage``, else the ``(text length + 1) / 4``
estimate of the request and of the answer as far as it went, or 0 when no provider answer exists.

When the counter backend cannot tell (Redis unreachable), the endpoint's policy decides: ``open`` admits
without counting (``modelgate_rate_limit_unchecked_total``), ``closed`` answers 503 with ``retry-after``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ...errors import BadRequest, RateLimited, RateLimitsUnavailable
from ...exchange import ANONYMOUS, Exchange, Next, Outcome, Result
from .counters import CounterBackend, CountersUnavailable, Refused, Ticket
from .limit_plan import LimitPlan
from .reservation import DEFAULT_MAX_TOKENS, Reservation, reservation

Policy = Literal["open", "closed"]
"""What an endpoint does while its counters cannot be reached."""


@dataclass(frozen=True, slots=True)
class Hooks:
    """Metric callbacks of one endpoint."""

    refused: Callable[[], None] | None = None
    unchecked: Callable[[], None] | None = None


class RateLimits:
    __slots__ = ("backend", "default_max_tokens", "hooks", "plan", "policy")

    def __init__(self, plan: LimitPlan, backend: CounterBackend, policy: Policy = "closed",
                 default_max_tokens: int = DEFAULT_MAX_TOKENS, hooks: Hooks | None = None) -> None:
        self.plan, self.backend, self.policy = plan, backend, policy
        self.default_max_tokens = default_max_tokens
        self.hooks = hooks or Hooks()

    async def __call__(self, ex: Exchange, call_next: Next) -> Result:
        slots, counts_tokens, cap = self.plan.limits_for(ex.principal or ANONYMOUS)
        if not slots:
            return await call_next(ex)
        reserved = reservation(ex.task, ex.payload, self.default_max_tokens, cap) if counts_tokens else None
        try:
            decision = await self.backend.admit(slots, reserved.tokens if reserved is not None else 0)
        except CountersUnavailable as exc:
            if self.policy == "open":
                if self.hooks.unchecked is not None:
                    self.hooks.unchecked()
                return await call_next(ex)
            raise RateLimitsUnavailable(
                f"the rate limits of the endpoint {self.plan.endpoint!r} cannot be checked ({exc}); the endpoint "
                "refuses calls until they can (policy: closed)", headers={"retry-after": "1"}) from None
        if isinstance(decision, Refused):
            raise self._refusal(decision, reserved)
        if decision.meters:
            ex.on_finish(_Settle(self.backend, decision))
        return await call_next(ex)

    def _refusal(self, refused: Refused, reserved: Reservation | None) -> Exception:
        meter = refused.meter
        where = f"on the endpoint {self.plan.endpoint!r}"
        per_replica = ""
        if self.backend.kind == "local" and self.plan.replicas > 1:
            per_replica = f", {meter.limit} on each of {self.plan.replicas} replicas"
        if refused.too_large:
            assert reserved is not None
            return BadRequest(
                f"the request needs more tokens than a rate limit {where} allows at all: it reserves "
                f"{reserved.describe()}, over {meter.describe()}{per_replica}; lower max_tokens or the prompt",
                param="max_tokens")
        if self.hooks.refused is not None:
            self.hooks.refused()
        seconds = max(1, math.ceil(refused.wait))
        return RateLimited(f"rate limit exceeded {where}: {meter.describe()}{per_replica}; retry in {seconds} s",
                           headers={"retry-after": str(seconds)})


class _Settle:
    __slots__ = ("backend", "ticket")

    def __init__(self, backend: CounterBackend, ticket: Ticket) -> None:
        self.backend, self.ticket = backend, ticket

    def __call__(self, ex: Exchange, outcome: Outcome) -> None:
        self.backend.settle(self.ticket, outcome.usage.total if outcome.usage is not None else 0)
