"""The AI Gateway layers' process-wide options (from the command line) and the services the stages of one app
share (record sinks, the caller-identity reader, the rate-limit counters, metrics)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from ..cooldowns import Cooldowns
from ..metrics import Metrics, PrincipalUsage
from ..spec.gateway import GuardrailJudge
from ..stages.backpressure.policy import RetryPolicy
from ..stages.guardrails.judge import JudgeContext
from ..stages.identity.auth_config import AuthConfig, AuthRuntime, build
from ..stages.identity.headers import IdentityReader, IdentitySettings
from ..stages.rate_limits.admission import Policy
from ..stages.rate_limits.counters import CounterBackend
from ..stages.rate_limits.local_counters import LocalCounters
from ..stages.rate_limits.redis_settings import RedisSettings
from ..stages.rate_limits.reservation import DEFAULT_MAX_TOKENS
from ..stages.records.sinks import STDOUT, RecordSinks
from ..stages.records.table_sink import TableSettings
from ..stages.records.table_store import TableStore
from ..stages.records.tables import Tables
from ..traces import Tracing

DEFAULT_USAGE_PRINCIPALS = 100
TRACE_FLUSH_SECONDS = 5.0
"""How long shutdown waits for the last spans to be exported (after the tables' flush; within the pod's grace)."""

TRUSTED_HEADERS: Literal["trusted-header"] = "trusted-header"
"""The authentication choice of the identity-header flags: trust the headers of an authenticating proxy in front
(``identity``), no credential checked here."""
NO_AUTH = AuthConfig(mode="none")
"""The explicit opt-out (``--no-auth``): every caller is anonymous, every query allowed; the endpoints are open."""

AuthChoice = AuthConfig | Literal["trusted-header"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewaySettings:
    auth: AuthChoice
    """How callers are authenticated, always an explicit choice (there is no open default): an
    :class:`AuthConfig` (``--auth-config``, ``--api-keys``; :data:`NO_AUTH` for ``--no-auth``), or
    :data:`TRUSTED_HEADERS` for the identity-header flags."""
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    rate_limit_replicas: int = 1
    """Proxy replicas sharing the endpoint's traffic: with the in-process counters each enforces
    ``ceil(limit / replicas)``."""
    rate_limit_redis: RedisSettings | None = None
    """Count in this Redis (shared by every replica and worker) instead of in the process."""
    rate_limit_unavailable: Policy = "closed"
    """What endpoints do while the Redis counters are unreachable."""
    rate_limit_unavailable_for: tuple[tuple[str, Policy], ...] = ()
    """Per-endpoint exceptions to ``rate_limit_unavailable``."""
    rate_limit_default_max_tokens: int = DEFAULT_MAX_TOKENS
    """Output tokens reserved for a request that sets no ``max_tokens``."""
    usage_principals: int = DEFAULT_USAGE_PRINCIPALS
    """Principals per endpoint with their own usage series (the rest count as ``other``)."""
    usage_log: str | None = STDOUT
    """Where usage records go as JSON lines: ``-`` (standard output), a file, or ``None`` (tables only)."""
    payload_log: str | None = STDOUT
    """Where payload records go as JSON lines: ``-`` (standard output), a file, or ``None`` (tables only)."""
    table_store: TableStore | None = None
    """Where the Delta tables live (``--table-root``); ``None``: no tables."""
    tables: TableSettings = field(default_factory=TableSettings)
    record_queue: int = 10_000
    """Records waiting to be written, per destination, before new ones are dropped."""
    guardrail_judge: GuardrailJudge | None = None
    """The judge of ``safety`` / ``validTopics`` for endpoints whose spec names none (``--guardrail-judge-*``)."""
    tracing: bool = False
    """OpenTelemetry traces, configured by the ``OTEL_*`` variables (docs/tracing.md); off by default."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    """Provider back-pressure: retries, first-byte timeout, cool-downs (``--provider-max-attempts`` etc.)."""

    def unavailable_policy(self, endpoint: str) -> Policy:
        for name, policy in self.rate_limit_unavailable_for:
            if name == endpoint:
                return policy
        return self.rate_limit_unavailable


class GatewayServices:
    """What the AI Gateway stages of one app share."""

    def __init__(self, settings: GatewaySettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sinks = RecordSinks(max_queue=settings.record_queue, on_drop=metrics.record_dropped)
        self.identity = IdentityReader(settings.identity)
        choice = settings.auth
        self.auth_mode: str = choice.mode if isinstance(choice, AuthConfig) else TRUSTED_HEADERS
        """``bearer``, ``trusted-header`` or ``none`` (for ``/readyz`` and the start-up log)."""
        self.open = self.auth_mode == "none"
        """True when callers are not authenticated at all (``--no-auth``, ``mode: none``)."""
        self.auth: AuthRuntime | None = (build(choice) if isinstance(choice, AuthConfig) and choice.mode != "none"
                                         else None)
        """The authenticating stage's parts (``--auth-config``/``--api-keys``); None for the trusted headers and
        for the open mode (no stage: everyone is anonymous, every query allowed)."""
        self.limited: dict[str, Policy] = {}
        """Endpoints with rate limits, and their policy while the counters are unreachable."""
        self._counters: CounterBackend | None = None
        self.cooldowns = Cooldowns(max_seconds=settings.retry.cooldown_max, on_cool=metrics.cooled,
                                   enabled=settings.retry.cooldowns != "off" and settings.retry.cooldown_max > 0)
        self._share: Any = None
        self._principals: PrincipalUsage | None = None
        self.tables = (Tables(settings.table_store, settings.tables, metrics.table_rows_lost)
                       if settings.table_store is not None else None)
        self.judge_context: JudgeContext | None = None
        """Set by :func:`~modelgate_proxy.endpoints.build.build_endpoints` (the endpoints, client, credentials)."""
        self.tracing = Tracing(os.environ) if settings.tracing else None

    def counters(self) -> CounterBackend:
        """The one counter backend of this process (made on first use)."""
        if self._counters is None:
            redis = self.settings.rate_limit_redis
            if redis is None:
                self._counters = LocalCounters()
            else:
                from ..stages.rate_limits.redis_counters import RedisCounters  # the client only when configured

                self._counters = RedisCounters(redis, on_state=self.metrics.rate_limit_store_state,
                                               on_error=self.metrics.rate_limit_store_error)
        return self._counters

    def watch_cooldowns(self, endpoint: str, entities: list[str]) -> None:
        """Share the cool-downs of ``endpoint``'s entities with the other replicas (with the Redis backend)."""
        if self.settings.rate_limit_redis is None or not self.cooldowns.enabled:
            return
        if self._share is None:
            from ..stages.backpressure.redis_cooldowns import RedisCooldowns  # the client only when configured

            counters = self.counters()
            client = getattr(counters, "client", None)
            if client is None:
                return
            self._share = RedisCooldowns(client, self.settings.rate_limit_redis.prefix, self.cooldowns)
            self.cooldowns.share = self._share
        for entity in entities:
            self._share.watch(endpoint, entity)

    def principal_usage(self) -> PrincipalUsage:
        if self._principals is None:
            self._principals = self.metrics.principal_usage(self.settings.usage_principals)
        return self._principals

    async def start(self) -> None:
        await self.sinks.start()
        if self.tables is not None:
            await self.tables.start()
        if self._counters is not None:
            await self._counters.start()
        if self.auth is not None:
            await self.auth.start()
        if self._share is not None:
            await self._share.start()

    async def stop(self) -> None:
        if self._share is not None:
            await self._share.close()
        if self.auth is not None:
            await self.auth.close()
        if self._counters is not None:
            await self._counters.close()
        if self.tables is not None:
            await self.tables.stop()  # SIGTERM: uvicorn drained the requests; the tables flush (flush_seconds)
        await self.sinks.stop()
        if self.tracing is not None:  # export the spans that wait, for a bounded time (a collector may be down)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.to_thread(self.tracing.shutdown), TRACE_FLUSH_SECONDS)

    def authentication(self) -> dict[str, str | bool]:
        """What ``/readyz`` says about authentication."""
        return {"mode": self.auth_mode, "open": self.open}

    def readiness(self) -> tuple[list[str], list[str]]:
        """(problems, warnings) for ``/readyz``: while the counters are unreachable, endpoints whose policy is
        ``closed`` cannot serve (a problem), those with ``open`` serve unlimited (a warning)."""
        problems: list[str] = []
        warnings: list[str] = []
        if self.tables is not None:
            warnings += self.tables.problems()  # records late or lost: reported, but no reason to stop serving
        counters = self._counters
        if counters is None or counters.available or not self.limited:
            return problems, warnings
        for endpoint, policy in self.limited.items():
            if policy == "closed":
                problems.append(f"endpoint {endpoint!r}: the rate-limit store is unreachable; calls are refused "
                                "until it is back (policy: closed)")
            else:
                warnings.append(f"endpoint {endpoint!r}: the rate-limit store is unreachable; calls are admitted "
                                "without rate limits until it is back (policy: open)")
        return problems, warnings
