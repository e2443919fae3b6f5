"""The ServingEndpoint API: pydantic models that are the single source of truth for the CRD and the proxy.

This package imports nothing but pydantic (an import-linter contract checks it).
"""

from .endpoint import (
    API_VERSION,
    ENDPOINT_NAME_MAX_LENGTH,
    ENDPOINT_NAME_PATTERN,
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    TASKS,
    VERSION,
    EndpointTag,
    ExternalModel,
    ObjectMeta,
    ProxySettings,
    Route,
    ServedEntity,
    ServingEndpoint,
    ServingEndpointSpec,
    Task,
    TrafficConfig,
    default_entity_name,
)
from .gateway import AiGatewayConfig, FallbackConfig, Guardrails, InferenceTableConfig, RateLimit, UsageTrackingConfig
from .provider_configs import (
    PROVIDER_CONFIG_FIELDS,
    Ai21LabsConfig,
    AmazonBedrockConfig,
    AnthropicConfig,
    ApiKeyAuth,
    BearerTokenAuth,
    CohereConfig,
    CustomProviderConfig,
    DatabricksModelServingConfig,
    GoogleCloudVertexAiConfig,
    OpenAIConfig,
    PaLMConfig,
    Provider,
)
from .secrets import SecretRef, is_secret_ref, parse_secret_ref
from .status import Condition, EndpointState, EntityState, ServedEntityStatus, ServingEndpointStatus

__all__ = [
    "API_VERSION", "ENDPOINT_NAME_MAX_LENGTH", "ENDPOINT_NAME_PATTERN", "GROUP", "KIND", "PLURAL", "PROVIDER_CONFIG_FIELDS", "SHORT_NAMES", "SINGULAR", "TASKS", "VERSION",
    "Ai21LabsConfig", "AiGatewayConfig", "AmazonBedrockConfig", "AnthropicConfig", "ApiKeyAuth", "BearerTokenAuth",
    "CohereConfig", "Condition", "CustomProviderConfig", "DatabricksModelServingConfig", "EndpointState",
    "EndpointTag", "EntityState", "ExternalModel", "FallbackConfig", "GoogleCloudVertexAiConfig", "Guardrails",
    "InferenceTableConfig", "ObjectMeta", "OpenAIConfig", "PaLMConfig", "Provider", "ProxySettings", "RateLimit",
    "Route", "SecretRef", "ServedEntity", "ServedEntityStatus", "ServingEndpoint", "ServingEndpointSpec",
    "ServingEndpointStatus", "Task", "TrafficConfig", "UsageTrackingConfig", "default_entity_name",
    "is_secret_ref", "parse_secret_ref",
]
