"""The one place that decides an endpoint's stages: which, and in which order, in one pass over its spec (and
the process-wide AI Gateway options). Every AI Gateway layer is one stage, added only when the endpoint's
``aiGateway`` (or a process-wide option) asks for it, so an endpoint without ``aiGateway`` runs the traffic
split and the provider call only: zero cost on its path. The order:

    (trace request) -> usage records -> payload log -> caller identity -> rate limits -> guardrails
        -> traffic split -> fallbacks -> (invoke: the pipeline's last link)

- :mod:`..stages.tracing` (only with ``OTEL_TRACES_EXPORTER``): the request's server span first; the client span
  of each provider call wraps the pipeline's last link (:mod:`.build`).

- :mod:`..stages.records` (``usageTrackingConfig.enabled``, ``inferenceTableConfig.enabled``) come first so
  that every answer, refusals included, gets its record; they act after the response through
  :meth:`~modelgate_proxy.exchange.Exchange.on_finish`.
- :mod:`..stages.identity` names the caller: with ``--auth-config``/``--api-keys`` from its credential, checking
  its ``query`` permission (every endpoint); in trusted-header mode from the headers, when ``--require-identity``
  is set, or when a layer uses the caller (records, rate limits); with ``--no-auth`` not at all (anonymous).
- :mod:`..stages.rate_limits` (``rateLimits``) admits or refuses (429), reserving the request's tokens, and
  settles them to the real use when the answer ends; one counter backend per process (in-process or Redis).
- :mod:`..stages.guardrails` (``guardrails``, built by :mod:`.guardrail_stage`) checks and masks the request,
  then the answer (a stream through a bounded window), with a judge model for ``safety`` and ``validTopics``.
- :mod:`..stages.traffic_split` picks the served entity (avoiding those cooling down), :mod:`..stages.fallbacks`
  (``fallbackConfig.enabled``) tries the others on 429/5xx, and the pipeline's terminal,
  :mod:`..stages.backpressure.attempts`, calls the provider through :mod:`..stages.invoke` (one call per
  attempt), retrying and cooling entities down per the ``serve`` back-pressure flags.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..exchange import Stage
from ..spec import ServingEndpointSpec
from ..spec.capabilities import unsupported_guardrails
from ..stages.fallbacks import Fallbacks
from ..stages.identity.authenticate import Authenticate
from ..stages.identity.caller import Identity
from ..stages.rate_limits.admission import Hooks, RateLimits
from ..stages.rate_limits.limit_plan import LimitPlan
from ..stages.records.payload_log import PayloadLog
from ..stages.records.usage import UsageTracking
from ..stages.tracing import TraceRequest
from ..stages.traffic_split import TrafficSplit, TrafficSplitter
from .guardrail_stage import guardrail_checks
from .services import GatewayServices

log = logging.getLogger("modelgate.proxy")


def stages_for(name: str, spec: ServingEndpointSpec, percentages: Sequence[int],
               services: GatewayServices | None, namespace: str | None = None) -> list[Stage]:
    """The stages of endpoint ``name``, in pipeline order. ``percentages`` are the served entities' traffic
    shares; without ``services`` (no AI Gateway options) only the traffic split and fallbacks apply."""
    stages: list[Stage] = []
    gateway = spec.ai_gateway
    tracing = services.tracing if services is not None else None
    if tracing is not None:  # OTEL_TRACES_EXPORTER: one server span per request (docs/tracing.md)
        stages.append(TraceRequest(tracing))
    if services is not None:
        settings = services.settings
        identity = settings.identity
        usage = gateway is not None and gateway.usage_tracking_config is not None and gateway.usage_tracking_config.enabled
        table = gateway.inference_table_config if gateway is not None else None
        limits = (gateway.rate_limits or []) if gateway is not None else []
        payload = table is not None and table.enabled
        tables = (services.tables.for_endpoint(
            name, spec.served_entities, usage=usage,
            payload_table=PayloadLog.table_name(name, table) if table is not None and payload else None)
            if services.tables is not None and (usage or payload) else None)
        if usage:
            sink = services.sinks.get(settings.usage_log) if settings.usage_log is not None else None
            stages.append(UsageTracking(sink, services.metrics.usage_tokens,
                                        services.principal_usage() if settings.usage_principals > 0 else None,
                                        tables))
        if table is not None and payload:
            sink = services.sinks.get(settings.payload_log) if settings.payload_log is not None else None
            stages.append(PayloadLog(name, table, sink, tables))
        if services.auth is not None:  # --auth-config/--api-keys: every query is authenticated and authorized
            stages.append(Authenticate(services.auth, namespace or "default", name))
        elif identity.required or (identity.configured and (usage or payload or limits)):
            stages.append(Identity(services.identity))
        if limits:
            counters = services.counters()
            replicas = settings.rate_limit_replicas if counters.kind == "local" else 1
            policy = services.limited[name] = settings.unavailable_policy(name)
            hooks = Hooks(services.metrics.rate_limited_of(name), services.metrics.rate_limit_unchecked_of(name))
            stages.append(RateLimits(LimitPlan(name, limits, replicas), counters, policy,
                                     settings.rate_limit_default_max_tokens, hooks))
        if gateway is not None and gateway.guardrails is not None:
            checks = guardrail_checks(name, gateway.guardrails, services)
            if checks.active:
                stages.append(checks)
        if settings.guardrail_judge is None:
            for path in unsupported_guardrails(spec):
                log.warning("endpoint %r: %s has no judge model (aiGateway.guardrails.judge or "
                            "--guardrail-judge-*): requests follow its failure policy", name, path)
    fallbacks = fallbacks_on(spec)
    cooldowns = services.cooldowns if services is not None and services.settings.retry.cools(len(percentages)) \
        else None
    stages.append(TrafficSplit(TrafficSplitter(percentages), cooldowns, fallbacks=fallbacks))
    if fallbacks:
        stages.append(Fallbacks(cooldowns, services.metrics.fell_back if services is not None else None))
    return stages


def fallbacks_on(spec: ServingEndpointSpec) -> bool:
    gateway = spec.ai_gateway
    return gateway is not None and gateway.fallback_config is not None and gateway.fallback_config.enabled
