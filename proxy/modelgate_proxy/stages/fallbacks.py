"""Fallbacks (``aiGateway.fallbackConfig.enabled``): when a served entity answers 429 or 5xx (or cannot be
reached), try the other served entities in served-entity list order; if all fail, the last error is the answer.

A stream falls back only before its first byte: the provider's status is known before streaming starts.
"""

from __future__ import annotations

from ..errors import GatewayError
from ..exchange import Exchange, Next, Result


def retryable(err: GatewayError) -> bool:
    return err.status == 429 or err.status >= 500


class Fallbacks:
    async def __call__(self, ex: Exchange, call_next: Next) -> Result:
        entities = ex.endpoint.entities
        last: GatewayError | None = None
        for index in ex.order:
            ex.entity = entities[index]
            try:
                return await call_next(ex)
            except GatewayError as err:
                if not retryable(err):
                    raise
                last = err
        assert last is not None
        raise last
