"""Per-endpoint state computed once at start-up, in one pass: each served entity's adapter and metric children,
then the endpoint's pipeline (its stages from :mod:`.stage_list`, :class:`~modelgate_proxy.stages.invoke.Invoke`
last)."""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Iterable, Mapping, Sequence

from ..credentials import FileCredentials, secret_references
from ..errors import GatewayError, ProviderConfigError
from ..exchange import EndpointRuntime, EntityRuntime, Next, Pipeline
from ..metrics import Metrics
from ..providers.base import Provider
from ..providers.registry import adapter_class
from ..spec import ServedEntity, ServingEndpoint, ServingEndpointSpec
from ..stages.backpressure.attempts import Attempts
from ..stages.guardrails.judge import JudgeContext
from ..stages.invoke import Invoke
from ..stages.tracing import TraceAttempt
from ..upstream import Upstream
from .services import GatewayServices
from .stage_list import fallbacks_on, stages_for


class EntityRuntimeFactory:
    """Builds adapters, keeping a construction failure as the entity's answer (503) instead of a crash."""

    def __init__(self, credentials: FileCredentials, upstream: Upstream, metrics: Metrics) -> None:
        self.credentials, self.upstream, self.metrics = credentials, upstream, metrics

    def build(self, endpoint: str, index: int, spec: ServedEntity) -> EntityRuntime:
        provider: Provider | None = None
        error: GatewayError | None = None
        try:
            provider = adapter_class(spec.external_model.provider)(spec.external_model, self.credentials, self.upstream)
        except GatewayError as exc:
            error = exc
        except Exception as exc:  # a broken adapter must not stop the other entities
            error = ProviderConfigError(
                f"served entity {spec.effective_name!r}: provider {spec.external_model.provider!r} cannot be "
                f"configured ({type(exc).__name__})"
            )
        if provider is not None and spec.external_model.task not in provider.tasks:
            error = ProviderConfigError(
                f"provider {spec.external_model.provider!r} does not support the task {spec.external_model.task}"
            )
            provider = None
        return EntityRuntime(index, spec, provider, error, self.metrics.for_entity(endpoint, spec.effective_name))


def traffic_percentages(spec: ServingEndpointSpec, entities: Sequence[EntityRuntime]) -> list[int]:
    """Each served entity's share of first-choice traffic, in served-entity order: the ``trafficConfig`` routes,
    or everything to the first entity without one."""
    if spec.traffic_config is None:
        return [100] + [0] * (len(entities) - 1)
    by_name = {r.served_entity_name: r.traffic_percentage for r in spec.traffic_config.routes}
    return [by_name.get(e.name, 0) for e in entities]


def build_endpoints(
    endpoints: Iterable[ServingEndpoint], credentials: FileCredentials, upstream: Upstream, metrics: Metrics,
    services: GatewayServices | None = None,
) -> dict[str, EndpointRuntime]:
    factory = EntityRuntimeFactory(credentials, upstream, metrics)
    invoke: Next = Invoke(upstream)
    if services is not None and services.tracing is not None:  # a client span around each provider call
        invoke = TraceAttempt(services.tracing, invoke)
    out: dict[str, EndpointRuntime] = {}
    if services is not None and services.judge_context is None:
        # Judges find their endpoint at request time in the first map built: the app's (later builds of single
        # endpoints, by the workspace gateway's watch, are put into that same map).
        services.judge_context = JudgeContext(out, upstream, credentials)
    for endpoint in endpoints:
        spec = endpoint.spec
        entities = tuple(factory.build(endpoint.name, i, e) for i, e in enumerate(spec.served_entities))
        terminal: Next = invoke
        if services is not None:
            policy = services.settings.retry
            terminal = Attempts(invoke, endpoint.name, policy, services.cooldowns, metrics,
                                entities=len(entities), fallbacks=fallbacks_on(spec))
            if policy.cools(len(entities)):
                services.watch_cooldowns(endpoint.name, [e.name for e in entities])
        stages = stages_for(endpoint.name, spec, traffic_percentages(spec, entities), services,
                            endpoint.metadata.namespace)
        out[endpoint.name] = EndpointRuntime(
            name=endpoint.name,
            spec=spec,
            task=spec.task,
            entities=entities,
            pipeline=Pipeline(stages, terminal),
            references=tuple(secret_references(spec, "spec")),
            namespace=endpoint.metadata.namespace or "default",
        )
    return out


def add_judge_endpoints(services: GatewayServices, judges: Mapping[str, EndpointRuntime]) -> None:
    """Make ``judges`` (endpoints built only as guardrail judges: ``--judge-file``, the judge endpoint the operator
    renders into another endpoint's proxy) reachable by the judges of the served endpoints, and by nothing else:
    they are not routed. A served endpoint of the same name wins."""
    context = services.judge_context
    if not judges or context is None:
        return
    served = context.endpoints  # the app's map itself (endpoints added to it later stay visible)
    context.endpoints = ChainMap(served if isinstance(served, dict) else dict(served), dict(judges))
