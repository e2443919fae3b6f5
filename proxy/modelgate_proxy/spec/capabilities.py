"""What a provider can serve and which spec settings cannot work outside Databricks: one definition of each rule.

The operator judges a spec with these (``ConfigValid``) without loading the proxy's runtime; the proxy's
adapters take their ``tasks`` from :data:`PROVIDER_TASKS` and their refusals from the messages here, so the
operator and the proxy cannot disagree (``tests/spec/test_capabilities.py`` checks every registered adapter).
Pure data and functions over the spec models; imports nothing but the spec itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .endpoint import TASKS, ServingEndpointSpec, Task
from .provider_configs import AmazonBedrockConfig

CHAT: Task = "llm/v1/chat"
COMPLETIONS: Task = "llm/v1/completions"
EMBEDDINGS: Task = "llm/v1/embeddings"

PROVIDER_TASKS: Mapping[str, frozenset[Task]] = MappingProxyType({
    "openai": frozenset(TASKS),
    "custom": frozenset(TASKS),
    "databricks-model-serving": frozenset(TASKS),
    "anthropic": frozenset({CHAT, COMPLETIONS}),
    "cohere": frozenset(TASKS),
    "amazon-bedrock": frozenset(TASKS),
    "google-cloud-vertex-ai": frozenset(TASKS),
    "ai21labs": frozenset({CHAT, COMPLETIONS}),
    "palm": frozenset(TASKS),
})
"""Provider → the tasks its adapter accepts. A retired provider accepts them only to refuse each request with
:data:`RETIRED_PROVIDERS`' message (410), so it serves nothing: see :func:`servable_tasks`."""

RETIRED_PROVIDERS: Mapping[str, str] = MappingProxyType({
    "palm": "the PaLM API was retired by Google; move this endpoint to google-cloud-vertex-ai (Gemini)",
})
"""Provider → why it cannot serve and what to use instead (the proxy's 410 body, the operator's condition)."""

BEDROCK_EMBEDDING_FAMILIES: frozenset[str] = frozenset({"amazon", "cohere"})
"""The ``bedrockProvider`` families whose embedding models the proxy can call (Titan, Cohere Embed); chat and
completions go through the Converse API, which every family supports."""

UC_SERVICE_CREDENTIAL_MESSAGE = (
    "amazonBedrockConfig.ucServiceCredentialName names a Databricks Unity Catalog service credential, which does "
    "not exist outside Databricks; use awsAccessKeyId/awsSecretAccessKey references or instanceProfileArn (the "
    "pod's AWS credential chain)"
)
"""Why a Bedrock config with ``ucServiceCredentialName`` cannot work here (both sides say exactly this)."""


def servable_tasks(provider: str, bedrock_family: str | None = None) -> frozenset[Task]:
    """The tasks ``provider`` can serve (empty when it is unknown or retired); for Amazon Bedrock, of the
    models of ``bedrock_family`` when given."""
    if provider in RETIRED_PROVIDERS:
        return frozenset()
    tasks = PROVIDER_TASKS.get(provider, frozenset())
    if provider == "amazon-bedrock" and bedrock_family is not None and bedrock_family not in BEDROCK_EMBEDDING_FAMILIES:
        return tasks - {EMBEDDINGS}
    return tasks


def bedrock_config_problem(config: AmazonBedrockConfig) -> str | None:
    """Why this Bedrock config cannot work outside Databricks, or None."""
    return UC_SERVICE_CREDENTIAL_MESSAGE if config.uc_service_credential_name is not None else None


def judged_guardrails(spec: ServingEndpointSpec) -> list[str]:
    """Field paths of the guardrails a judge model decides: ``aiGateway.guardrails.<input|output>.safety`` when
    true, ``...validTopics`` when not empty."""
    gateway = spec.ai_gateway
    if gateway is None or gateway.guardrails is None:
        return []
    out: list[str] = []
    for direction in ("input", "output"):
        params = getattr(gateway.guardrails, direction)
        if params is None:
            continue
        if params.safety:
            out.append(f"aiGateway.guardrails.{direction}.safety")
        if params.valid_topics:
            out.append(f"aiGateway.guardrails.{direction}.validTopics")
    return out


def unsupported_guardrails(spec: ServingEndpointSpec) -> list[str]:
    """Field paths of guardrails this proxy cannot enforce because no judge model is named in the spec
    (``aiGateway.guardrails.judge``): the :func:`judged_guardrails` of a spec whose judge names no model."""
    gateway = spec.ai_gateway
    judge = gateway.guardrails.judge if gateway is not None and gateway.guardrails is not None else None
    if judge is not None and (judge.endpoint is not None or judge.url is not None):
        return []  # judged by the named model
    return judged_guardrails(spec)
