"""Per-endpoint state computed once at start-up: adapters, traffic split, pipeline and metric children."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .credentials import FileCredentials, secret_references
from .errors import GatewayError, ProviderConfigError
from .metrics import EntityMetrics, Metrics
from .pipeline import Pipeline, stages_for
from .providers.base import Provider
from .providers.registry import adapter_class
from .spec import ServedEntity, ServingEndpoint, ServingEndpointSpec, Task
from .stages.invoke import Invoke
from .traffic import TrafficSplitter
from .upstream import Upstream

if TYPE_CHECKING:
    from .aigateway import GatewayServices


class EntityRuntime:
    """One served entity: its adapter (or why it has none) and its metric children."""

    __slots__ = ("_error", "_provider", "index", "metrics", "name", "name_header", "spec")

    def __init__(self, index: int, spec: ServedEntity, provider: Provider | None, error: GatewayError | None,
                 metrics: EntityMetrics) -> None:
        self.index, self.spec, self.name = index, spec, spec.effective_name
        self._provider, self._error = provider, error
        self.metrics = metrics
        self.name_header = self.name.encode()

    def provider(self) -> Provider:
        if self._provider is None:
            assert self._error is not None
            raise self._error
        return self._provider

    @property
    def problem(self) -> str | None:
        return self._error.message if self._error is not None else None


@dataclass(slots=True)
class EndpointRuntime:
    name: str
    spec: ServingEndpointSpec
    task: Task
    entities: tuple[EntityRuntime, ...]
    splitter: TrafficSplitter
    pipeline: Pipeline
    references: tuple[tuple[str, str], ...]
    """(field path, reference) of every credential the endpoint uses, for /readyz."""


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


def build_endpoints(
    endpoints: Iterable[ServingEndpoint], credentials: FileCredentials, upstream: Upstream, metrics: Metrics,
    services: GatewayServices | None = None,
) -> dict[str, EndpointRuntime]:
    factory = EntityRuntimeFactory(credentials, upstream, metrics)
    terminal = Invoke(upstream)
    out: dict[str, EndpointRuntime] = {}
    for endpoint in endpoints:
        spec = endpoint.spec
        entities = tuple(factory.build(endpoint.name, i, e) for i, e in enumerate(spec.served_entities))
        if spec.traffic_config is None:
            percentages = [100] + [0] * (len(entities) - 1)
        else:
            by_name = {r.served_entity_name: r.traffic_percentage for r in spec.traffic_config.routes}
            percentages = [by_name.get(e.name, 0) for e in entities]
        runtime = EndpointRuntime(
            name=endpoint.name,
            spec=spec,
            task=spec.task,
            entities=entities,
            splitter=TrafficSplitter(percentages),
            pipeline=Pipeline([], terminal),
            references=tuple(secret_references(spec, "spec")),
        )
        runtime.pipeline = Pipeline(stages_for(runtime, services), terminal)
        out[endpoint.name] = runtime
    return out
