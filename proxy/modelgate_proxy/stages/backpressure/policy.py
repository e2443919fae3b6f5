"""When a failed provider call is tried again, and after how long (``modelgate serve`` flags, documented in
docs/rate-limits.md, "Provider back-pressure").

Retryable: a 429, 502, 503 or 504 the provider answered (Anthropic's 529 arrives as 503), and a call that got
no answer at all (:class:`~modelgate_proxy.errors.UpstreamUnreachable`: connection refused or reset before a
response). Never retried: any other status (a 400 stays a 400), the proxy's own read timeout (the wait is spent
already), and anything after the first byte of an answer reached the caller (a stream under way is pumped after
the pipeline returned: no attempt loop runs any more).

The wait before retry ``n`` (1-based) is the provider's reset hint when it gave one
(:mod:`modelgate_proxy.providers.reset_hints`), otherwise exponential backoff with full jitter (AWS' "full
jitter"): uniform in ``[0, min(backoff_max, backoff_base * 2**(n-1))]``. A retry is not made when its wait is
longer than ``max_wait`` or would end past the request's deadline (``--request-timeout``): the caller then gets
the provider's answer (with its ``retry-after``) at once instead of a 504 later.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ...errors import GatewayError, UpstreamError, UpstreamUnreachable, failure_reason

DEFAULT_MAX_ATTEMPTS = 1
"""Provider calls per served entity and request: 1, no retry (as Envoy without a retry policy and Databricks'
AI Gateway; OpenAI's and Anthropic's SDKs retry twice themselves, and a proxy retrying as well multiplies the
calls a struggling provider gets)."""
DEFAULT_BACKOFF_BASE = 0.5
DEFAULT_BACKOFF_MAX = 8.0
DEFAULT_MAX_WAIT = 30.0
DEFAULT_FIRST_BYTE_TIMEOUT = 60.0
RETRYABLE_STATUS = frozenset((429, 502, 503, 504))
CooldownMode = str
"""``auto`` (endpoints with two served entities or more), ``on`` (every endpoint), ``off``."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    """Provider calls per served entity and request (1: no retry)."""
    backoff_base: float = DEFAULT_BACKOFF_BASE
    backoff_max: float = DEFAULT_BACKOFF_MAX
    max_wait: float = DEFAULT_MAX_WAIT
    """The longest wait before a retry (a provider's reset hint beyond it is not waited for)."""
    first_byte_timeout: float = DEFAULT_FIRST_BYTE_TIMEOUT
    """With fallbacks on: seconds a stream may take to send its first byte after its headers (0: no limit)."""
    cooldowns: CooldownMode = "auto"
    cooldown_max: float = 60.0
    """The longest cool-down, whatever the provider's reset hint says."""
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def backoff(self, retry: int) -> float:
        """The jittered wait before retry ``retry`` (1-based) when the provider gave no hint."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (retry - 1))
        return self.rng.uniform(0.0, ceiling)

    def cools(self, entities: int) -> bool:
        """Whether an endpoint with ``entities`` served entities cools an entity down after a 429 with a reset."""
        return self.cooldowns == "on" or (self.cooldowns == "auto" and entities > 1)


def retry_reason(err: GatewayError) -> str | None:
    """The metric reason of a retryable failure; ``None``: not retryable on the same entity."""
    if isinstance(err, UpstreamUnreachable) or (isinstance(err, UpstreamError) and err.status in RETRYABLE_STATUS):
        return failure_reason(err)
    return None

