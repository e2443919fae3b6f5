"""Fallbacks (``aiGateway.fallbackConfig.enabled``): when a served entity answers 429 or 5xx (or cannot be
reached, or a stream sends no byte within the first-byte timeout), try the other served entities in
served-entity list order; if all fail, the last error is the answer.

An entity cooling down after a 429 with a reset time (:mod:`modelgate_proxy.cooldowns`) is skipped without a
call; when every entity left is cooling down, the answer is a 429 with the shortest ``retry-after``.

A stream falls back only before its first byte reached the caller: the provider's status (and, with a first-byte
timeout, its first byte) is known before streaming starts.
"""

from __future__ import annotations

from collections.abc import Callable

from ..cooldowns import Cooldowns
from ..errors import GatewayError, ProvidersCooledDown, failure_reason
from ..exchange import Exchange, Next, Result


def retryable(err: GatewayError) -> bool:
    return err.status == 429 or err.status >= 500


class Fallbacks:
    __slots__ = ("cooldowns", "on_fallback")

    def __init__(self, cooldowns: Cooldowns | None = None,
                 on_fallback: Callable[[str, str, str], None] | None = None) -> None:
        self.cooldowns = cooldowns
        self.on_fallback = on_fallback
        """Called with (endpoint, the entity left, reason) each time the request moves on."""

    async def __call__(self, ex: Exchange, call_next: Next) -> Result:
        entities = ex.endpoint.entities
        name = ex.endpoint.name
        cooldowns = self.cooldowns
        last: GatewayError | None = None
        left_by: tuple[str, str] | None = None
        soonest = float("inf")
        for index in ex.order:
            entity = entities[index]
            if cooldowns is not None:
                left = cooldowns.remaining(name, entity.name)
                if left > 0:
                    soonest = min(soonest, left)
                    continue
            if left_by is not None and self.on_fallback is not None:
                self.on_fallback(name, *left_by)
            ex.entity = entity
            try:
                return await call_next(ex)
            except GatewayError as err:
                if not retryable(err):
                    raise
                if isinstance(err, ProvidersCooledDown):
                    soonest = min(soonest, float(err.headers.get("retry-after", "1")))
                left_by = (entity.name, failure_reason(err))
                last = err
        if last is None or (isinstance(last, ProvidersCooledDown) and soonest < float("inf")):
            raise ProvidersCooledDown(f"every served entity of {name!r} is cooling down after its provider's 429",
                                      soonest if soonest < float("inf") else 1.0)
        raise last
