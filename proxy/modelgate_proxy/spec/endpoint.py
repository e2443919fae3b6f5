"""The ServingEndpoint resource: served entities, traffic split, AI Gateway, tags and proxy settings."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from .authentication import AuthenticationSettings
from .gateway import AiGatewayConfig
from .provider_configs import (
    PROVIDER_CONFIG_FIELDS,
    Ai21LabsConfig,
    AmazonBedrockConfig,
    AnthropicConfig,
    CohereConfig,
    CustomProviderConfig,
    DatabricksModelServingConfig,
    GoogleCloudVertexAiConfig,
    OpenAIConfig,
    PaLMConfig,
    Provider,
)
from .rules import Rule, has
from .scaling import Autoscaling, DisruptionBudget
from .spec_model import SpecModel
from .status import ServingEndpointStatus

GROUP = "serving.modelgate.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ServingEndpoint"
PLURAL = "servingendpoints"
SINGULAR = "servingendpoint"
SHORT_NAMES = ("se", "sep")

Task = Literal["llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings"]
TASKS: tuple[Task, ...] = ("llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings")

ENTITY_NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
ENTITY_NAME_FORMAT: dict[str, Any] = {"x-modelgate-format": "must consist of letters, digits, '_' and '-'"}
_ENTITY_NAME = re.compile(ENTITY_NAME_PATTERN)


def default_entity_name(model_name: str) -> str:
    """Databricks' default served-entity name: the external model's name with ``.`` and ``:`` replaced by ``-``."""
    return model_name.replace(".", "-").replace(":", "-")


def _config_rule(provider: str, alias: str, attr: str) -> Rule:
    return Rule(
        cel=f"has(self.{alias}) == (self.provider == '{provider}')",
        message=f"{alias} is required when provider is {provider}, and only then",
        check=lambda o: has(o, attr) == (o.provider == provider),
        field_path=f".{alias}",
        reason="FieldValueInvalid",
    )


class ExternalModel(SpecModel):
    """A model hosted by a provider outside the cluster."""

    name: Annotated[str, Field(min_length=1, max_length=256)]
    """The provider's model name, e.g. ``gpt-4o``, ``claude-3-5-sonnet-latest``, ``amazon.titan-embed-text-v2:0``."""
    provider: Provider
    """The provider: openai, anthropic, cohere, amazon-bedrock, google-cloud-vertex-ai, databricks-model-serving,
    ai21labs, custom or palm (retired)."""
    task: Task
    """The task: ``llm/v1/chat``, ``llm/v1/completions`` or ``llm/v1/embeddings``."""
    openai_config: OpenAIConfig | None = None
    """Required when provider is openai."""
    anthropic_config: AnthropicConfig | None = None
    """Required when provider is anthropic."""
    cohere_config: CohereConfig | None = None
    """Required when provider is cohere."""
    amazon_bedrock_config: AmazonBedrockConfig | None = None
    """Required when provider is amazon-bedrock."""
    google_cloud_vertex_ai_config: GoogleCloudVertexAiConfig | None = None
    """Required when provider is google-cloud-vertex-ai."""
    databricks_model_serving_config: DatabricksModelServingConfig | None = None
    """Required when provider is databricks-model-serving."""
    ai21labs_config: Ai21LabsConfig | None = None
    """Required when provider is ai21labs."""
    custom_provider_config: CustomProviderConfig | None = None
    """Required when provider is custom."""
    palm_config: PaLMConfig | None = None
    """Required when provider is palm (retired)."""

    rules: ClassVar[tuple[Rule, ...]] = tuple(
        _config_rule(p, alias, attr) for p, (attr, alias) in PROVIDER_CONFIG_FIELDS.items()
    )

    @property
    def provider_config(self) -> SpecModel:
        """The one config block that matches the provider."""
        config: SpecModel = getattr(self, PROVIDER_CONFIG_FIELDS[self.provider][0])
        return config


_EFFECTIVE_NAME_CEL = "(has({v}.name) ? {v}.name : {v}.externalModel.name.replace('.', '-').replace(':', '-'))"


def _effective(var: str) -> str:
    return _EFFECTIVE_NAME_CEL.format(v=var)


class ServedEntity(SpecModel):
    """One model the endpoint can send requests to."""

    name: Annotated[str, Field(pattern=ENTITY_NAME_PATTERN, max_length=128, json_schema_extra=ENTITY_NAME_FORMAT)] | None = None
    """Name of the served entity, unique in the endpoint; default the external model's name with ``.`` and
    ``:`` replaced by ``-``."""
    external_model: ExternalModel
    """The external model this entity serves."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="has(self.name) || self.externalModel.name.matches('^[A-Za-z0-9_.:-]{1,128}$')",
            message="name is required when the external model's name has characters other than letters, digits, "
            "'-', '_', '.' and ':' (or is longer than 128)",
            check=lambda o: has(o, "name") or (_ENTITY_NAME.match(default_entity_name(o.external_model.name)) is not None
            and len(o.external_model.name) <= 128),
            field_path=".name",
            reason="FieldValueRequired",
        ),
    )

    @property
    def effective_name(self) -> str:
        return self.name if self.name is not None else default_entity_name(self.external_model.name)


class Route(SpecModel):
    """The share of traffic one served entity receives."""

    served_entity_name: Annotated[str, Field(pattern=ENTITY_NAME_PATTERN, max_length=128, json_schema_extra=ENTITY_NAME_FORMAT)]
    """Name of a served entity of this endpoint."""
    traffic_percentage: Annotated[int, Field(ge=0, le=100)]
    """Percentage of requests sent to it first (0 to 100; 0 means fallback only)."""


class TrafficConfig(SpecModel):
    """How requests are split across served entities."""

    routes: Annotated[
        list[Route],
        Field(
            min_length=1,
            max_length=10,
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["servedEntityName"]},
        ),
    ]
    """One route per served entity; the percentages add up to 100."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.routes.map(r, r.trafficPercentage).sum() == 100",
            message="the trafficPercentage of all routes must add up to 100",
            check=lambda o: sum(r.traffic_percentage for r in o.routes) == 100,
            field_path=".routes",
            reason="FieldValueInvalid",
        ),
        Rule(
            cel="self.routes.all(a, self.routes.exists_one(b, a.servedEntityName == b.servedEntityName))",
            message="each served entity may have only one route",
            check=lambda o: len({r.served_entity_name for r in o.routes}) == len(o.routes),
            field_path=".routes",
            reason="FieldValueInvalid",
        ),
    )


class EndpointTag(SpecModel):
    """A key/value tag, as on Databricks endpoints."""

    key: Annotated[str, Field(min_length=1, max_length=255)]
    """Tag key."""
    value: Annotated[str, Field(max_length=255)] | None = None
    """Tag value."""


QUANTITY_PATTERN = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
"""A Kubernetes resource quantity (the grammar of ``resource.Quantity``), e.g. ``500m``, ``1``, ``256Mi``, ``1e3``."""
QUANTITY_MAX_LENGTH = 64
QUANTITY_FORMAT = "must be a Kubernetes quantity such as 500m, 1, 1.5 or 256Mi"

Quantity = Annotated[
    int | Annotated[str, Field(pattern=QUANTITY_PATTERN, max_length=QUANTITY_MAX_LENGTH)],
    Field(
        union_mode="left_to_right",
        json_schema_extra={"x-kubernetes-int-or-string": True, "x-modelgate-format": QUANTITY_FORMAT},
    ),
]


class ResourceRequirements(SpecModel):
    """CPU and memory for each proxy container, as in a Pod spec."""

    model_config = ConfigDict(alias_generator=None)

    requests: Annotated[dict[Annotated[str, Field(max_length=253)], Quantity], Field(max_length=16)] | None = None
    """Minimum resources, e.g. ``{cpu: 100m, memory: 128Mi}``."""
    limits: Annotated[dict[Annotated[str, Field(max_length=253)], Quantity], Field(max_length=16)] | None = None
    """Maximum resources, e.g. ``{memory: 256Mi}``."""


class ProxySettings(SpecModel):
    """Kubernetes-only settings of the endpoint's proxy Deployment (not part of the Databricks API)."""

    replicas: Annotated[int, Field(ge=0, le=100)] | None = None
    """Number of proxy pods; default from the operator (1)."""
    resources: ResourceRequirements | None = None
    """Resources of the proxy container; default from the operator."""
    request_timeout_seconds: Annotated[int, Field(ge=1, le=3600)] | None = None
    """Total seconds a query request may take, from its arrival to the end of its answer (a stream included);
    past it the caller gets a 504 (a stream: an error event). Default: the proxy's ``--request-timeout`` (600)."""
    authentication: AuthenticationSettings | None = None
    """How callers are authenticated and authorized; each unset field takes the operator's (chart's) default,
    which is ``bearer``."""
    autoscaling: Autoscaling | None = None
    """A HorizontalPodAutoscaler for the proxy (then ``replicas`` is left to it)."""
    disruption_budget: DisruptionBudget | None = None
    """A PodDisruptionBudget for the proxy pods."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="!(has(self.replicas) && has(self.autoscaling))",
            message="replicas and autoscaling exclude each other: the autoscaler sets the replica count",
            check=lambda o: not (has(o, "replicas") and has(o, "autoscaling")),
            field_path=".replicas",
            reason="FieldValueForbidden",
        ),
    )


class ServingEndpointSpec(SpecModel):
    """The desired state of a serving endpoint with external models."""

    served_entities: Annotated[list[ServedEntity], Field(min_length=1, max_length=10)]
    """The models this endpoint serves (1 to 10), all with the same task."""
    traffic_config: TrafficConfig | None = None
    """How requests are split across served entities; required when there are several."""
    ai_gateway: AiGatewayConfig | None = None
    """AI Gateway: rate limits, usage tracking, payload logging, guardrails, fallbacks."""
    tags: Annotated[
        list[EndpointTag],
        Field(max_length=50, json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["key"]}),
    ] | None = None
    """Tags, as on Databricks endpoints; keys are unique."""
    description: Annotated[str, Field(max_length=4096)] | None = None
    """What this endpoint is for."""
    proxy: ProxySettings | None = None
    """Proxy Deployment settings (replicas, resources, authentication)."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="self.servedEntities.all(a, self.servedEntities.exists_one(b, "
            + _effective("a")
            + " == "
            + _effective("b")
            + "))",
            message="served entity names must be unique (a missing name defaults to the external model's name "
            "with '.' and ':' replaced by '-')",
            check=lambda o: len({e.effective_name for e in o.served_entities}) == len(o.served_entities),
            field_path=".servedEntities",
            reason="FieldValueInvalid",
        ),
        Rule(
            cel="self.servedEntities.all(e, e.externalModel.task == self.servedEntities[0].externalModel.task)",
            message="all served entities of an endpoint must have the same task",
            check=lambda o: len({e.external_model.task for e in o.served_entities}) == 1,
            field_path=".servedEntities",
            reason="FieldValueInvalid",
        ),
        Rule(
            cel="!has(self.trafficConfig) || self.trafficConfig.routes.all(r, self.servedEntities.exists(e, "
            + _effective("e")
            + " == r.servedEntityName))",
            message="every route of trafficConfig must name a served entity of this endpoint",
            check=lambda o: o.traffic_config is None
            or {r.served_entity_name for r in o.traffic_config.routes} <= {e.effective_name for e in o.served_entities},
            field_path=".trafficConfig.routes",
            reason="FieldValueInvalid",
        ),
        Rule(
            cel="size(self.servedEntities) == 1 || has(self.trafficConfig) && self.servedEntities.all(e, "
            "self.trafficConfig.routes.exists(r, r.servedEntityName == " + _effective("e") + "))",
            message="with several served entities, trafficConfig must have a route for every served entity",
            check=lambda o: len(o.served_entities) == 1
            or (o.traffic_config is not None
            and {e.effective_name for e in o.served_entities} <= {r.served_entity_name for r in o.traffic_config.routes}),
            field_path=".trafficConfig",
            reason="FieldValueRequired",
        ),
        Rule(
            cel="!has(self.tags) || self.tags.all(a, self.tags.exists_one(b, a.key == b.key))",
            message="tag keys must be unique",
            check=lambda o: o.tags is None or len({t.key for t in o.tags}) == len(o.tags),
            field_path=".tags",
            reason="FieldValueInvalid",
        ),
    )

    @property
    def task(self) -> Task:
        return self.served_entities[0].external_model.task


ENDPOINT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
"""An endpoint's name is a DNS label (no dots): it is a path segment of the query API and names the proxy's
Service. The CRD enforces the same rule (``crdgen``), so a manifest the proxy's standalone mode accepts is one
the API server accepts."""
ENDPOINT_NAME_MAX_LENGTH = 63


class ObjectMeta(BaseModel):
    """The parts of Kubernetes object metadata the proxy and the converter use; the rest is kept as is."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=ENDPOINT_NAME_MAX_LENGTH, pattern=ENDPOINT_NAME_PATTERN)]
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class ServingEndpoint(BaseModel):
    """A ServingEndpoint manifest, as applied to a cluster or given to the proxy in standalone mode."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    api_version: Literal["serving.modelgate.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["ServingEndpoint"]
    metadata: ObjectMeta
    spec: ServingEndpointSpec
    status: ServingEndpointStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    def to_manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": self.metadata.model_dump(exclude_none=True, mode="json"),
            "spec": self.spec.to_json_dict(),
        }
        if self.status is not None:
            out["status"] = self.status.to_json_dict()
        return out
