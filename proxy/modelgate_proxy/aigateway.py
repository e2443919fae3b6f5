"""The AI Gateway layers' process-wide options (from the command line) and shared services (record sinks,
metrics), and :func:`gateway_stages`: the stages an endpoint's ``aiGateway`` asks for, in pipeline order.

An endpoint without ``aiGateway`` (and no ``--require-identity``) gets none of them: zero cost on its path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .identity import IdentityReader, IdentitySettings
from .metrics import Metrics
from .records import STDOUT, RecordSinks

if TYPE_CHECKING:
    from .pipeline import Stage
    from .runtime import EndpointRuntime

log = logging.getLogger("modelgate.proxy")


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    rate_limit_replicas: int = 1
    """Proxy replicas sharing the endpoint's traffic: each enforces ``ceil(limit / replicas)``."""
    usage_log: str = STDOUT
    """Where usage records go: ``-`` (standard output) or a file."""
    payload_log: str = STDOUT
    """Where payload records go: ``-`` (standard output) or a file."""
    record_queue: int = 10_000
    """Records waiting to be written, per destination, before new ones are dropped."""


class GatewayServices:
    """What the AI Gateway stages of one app share."""

    def __init__(self, settings: GatewaySettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sinks = RecordSinks(max_queue=settings.record_queue, on_drop=metrics.record_dropped)
        self.identity = IdentityReader(settings.identity)


def gateway_stages(endpoint: EndpointRuntime, services: GatewayServices) -> list[Stage]:
    from .spec.capabilities import unsupported_guardrails
    from .stages.guardrails import Guardrails

    settings = services.settings
    gateway = endpoint.spec.ai_gateway
    stages: list[Stage] = []
    if gateway is None:
        if settings.identity.required:
            from .stages.identity import Identity

            stages.append(Identity(services.identity))
        return stages
    usage = gateway.usage_tracking_config is not None and gateway.usage_tracking_config.enabled
    table = gateway.inference_table_config
    payload = table is not None and table.enabled
    limits = gateway.rate_limits or []
    if usage:
        from .stages.usage import UsageTracking

        stages.append(UsageTracking(services.sinks.get(settings.usage_log), services.metrics.usage_tokens))
    if payload:
        from .stages.payload_log import PayloadLog

        assert table is not None
        stages.append(PayloadLog(endpoint.name, table, services.sinks.get(settings.payload_log)))
    if settings.identity.required or (settings.identity.configured and (usage or payload or limits)):
        from .stages.identity import Identity

        stages.append(Identity(services.identity))
    if limits:
        from .ratelimit import LimitPlan
        from .stages.rate_limits import RateLimits

        plan = LimitPlan(endpoint.name, limits, settings.rate_limit_replicas)
        stages.append(RateLimits(plan, services.metrics.rate_limited_of(endpoint.name)))
    if gateway.guardrails is not None:
        from .guard import TextGuard

        g = gateway.guardrails
        name = endpoint.name
        guardrails = Guardrails(
            TextGuard("input", g.input) if g.input is not None else None,
            TextGuard("output", g.output) if g.output is not None else None,
            lambda direction, guardrail: services.metrics.guardrail_blocked(name, direction, guardrail),
        )
        if guardrails.active:
            stages.append(guardrails)
    for path in unsupported_guardrails(endpoint.spec):
        log.warning("endpoint %r: %s is not enforced: it needs a classification model this proxy does not have",
                    endpoint.name, path)
    return stages
