"""The attempt loop: the pipeline's last link, calling the served entity ``ex.entity`` once per attempt
(:class:`~modelgate_proxy.stages.invoke.Invoke` is one attempt: one provider call), and trying again per the
:class:`~.policy.RetryPolicy`.

Per attempt:

1. An entity cooling down (:mod:`modelgate_proxy.cooldowns`) is not called: :class:`ProvidersCooledDown`
   (429 with ``retry-after``), which fallbacks treat like the provider's own 429.
2. One call (``attempt(ex)``). A failure the policy retries (:func:`~.policy.retry_reason`) is tried again after
   the provider's reset hint or a jittered backoff, within ``max_attempts``, ``max_wait`` and the request's
   deadline. A 429 with a reset hint cools the entity down first (for every request of every replica sharing the
   store); with fallbacks on, the request then leaves the entity at once for the next one instead of waiting.
3. With fallbacks on (and another entity to fall to), a stream must send its first byte within
   ``first_byte_timeout`` after its headers: otherwise :class:`FirstByteTimeout` (504) and fallbacks try the
   next entity. The byte read is kept (:attr:`~modelgate_proxy.exchange.Streaming.head`) and sent first.

Nothing here runs once a byte reached the caller: the result is returned before the server sends anything.
"""

from __future__ import annotations

import asyncio
from time import perf_counter

from ...cooldowns import Cooldowns
from ...errors import FirstByteTimeout, GatewayError, ProvidersCooledDown, UpstreamError
from ...exchange import EntityRuntime, Exchange, Next, Result, Streaming
from ...metrics import Metrics
from ...upstream import TRANSPORT_ERRORS, stream_broken
from .policy import RetryPolicy, retry_reason


class Attempts:
    """The terminal of one endpoint's pipeline: ``attempt`` (one provider call) under the retry policy."""

    __slots__ = ("attempt", "cooldowns", "cools", "endpoint", "first_byte", "metrics", "policy", "spread")

    def __init__(self, attempt: Next, endpoint: str, policy: RetryPolicy, cooldowns: Cooldowns, metrics: Metrics,
                 *, entities: int, fallbacks: bool) -> None:
        self.attempt, self.endpoint, self.policy = attempt, endpoint, policy
        self.cooldowns, self.metrics = cooldowns, metrics
        self.cools = policy.cools(entities)
        self.spread = fallbacks and entities > 1
        """Whether another entity can take over (fallbacks on, more than one entity)."""
        self.first_byte = policy.first_byte_timeout if self.spread and policy.first_byte_timeout > 0 else None

    async def __call__(self, ex: Exchange) -> Result:
        entity = ex.entity
        assert entity is not None, "the traffic split runs before the provider call"
        left = self.cooldowns.remaining(self.endpoint, entity.name) if self.cools else 0.0
        if left > 0:
            raise ProvidersCooledDown(f"served entity {entity.name!r} is cooling down after its provider's 429 "
                                      f"(about {left:.0f} s left)", left)
        tried = 0
        while True:
            tried += 1
            try:
                result = await self.attempt(ex)
                if self.first_byte is not None and isinstance(result, Streaming):
                    await self._first_byte(ex, result)
                return result
            except GatewayError as err:
                wait = self._retry_wait(ex, entity, err, tried)
                if wait is None:
                    raise
                self.metrics.retried(self.endpoint, entity.name, retry_reason(err) or "other")
            started = perf_counter()
            await asyncio.sleep(wait)
            ex.upstream_seconds += perf_counter() - started  # waiting for the provider, not the proxy's work

    def _retry_wait(self, ex: Exchange, entity: EntityRuntime, err: GatewayError, tried: int) -> float | None:
        """Seconds to wait before trying ``entity`` again after ``err``, or ``None``: do not (raise ``err``)."""
        if retry_reason(err) is None:
            return None
        hint = err.reset_in if isinstance(err, UpstreamError) else None
        cooled = False
        if hint is not None and err.status == 429 and self.cools:
            cooled = self.cooldowns.cool(self.endpoint, entity.name, hint) > 0
        if tried >= self.policy.max_attempts or (cooled and self.spread):
            return None  # attempts used up, or the entity cools down and fallbacks take the request elsewhere
        wait = hint if hint is not None else self.policy.backoff(tried)
        if wait > self.policy.max_wait or perf_counter() + wait >= ex.deadline:
            return None
        return wait

    async def _first_byte(self, ex: Exchange, result: Streaming) -> None:
        assert self.first_byte is not None
        started = perf_counter()
        timeout = max(0.0, min(self.first_byte, ex.deadline - started))
        try:
            result.head = await asyncio.wait_for(result.response.content.readany(), timeout)
        except TimeoutError:
            result.response.close()
            raise FirstByteTimeout(f"served entity {result.entity.name!r} sent no byte of its stream within "
                                   f"{self.first_byte:g} seconds") from None
        except TRANSPORT_ERRORS as exc:
            result.response.close()
            raise stream_broken(exc) from None
        except BaseException:
            result.response.close()
            raise
        finally:
            ex.upstream_seconds += perf_counter() - started
