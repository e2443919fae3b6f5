"""Checks only the operator can make: the schema (and its CEL rules) accepted the spec, but it cannot work.

Each problem becomes part of ``ConfigValid=False`` (reason ``InvalidConfig``) with a message that says what to
change. Nothing here looks at a credential's value.
"""

from __future__ import annotations

from modelgate_proxy.spec import ServingEndpointSpec

PROVIDER_TASKS: dict[str, frozenset[str]] = {
    "openai": frozenset({"llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings"}),
    "anthropic": frozenset({"llm/v1/chat", "llm/v1/completions"}),
    "cohere": frozenset({"llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings"}),
    "amazon-bedrock": frozenset({"llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings"}),
    "google-cloud-vertex-ai": frozenset({"llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings"}),
    "databricks-model-serving": frozenset({"llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings"}),
    "ai21labs": frozenset({"llm/v1/chat", "llm/v1/completions"}),
    "custom": frozenset({"llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings"}),
    "palm": frozenset(),
}
"""Which tasks each provider's API offers (the tasks a proxy adapter can serve)."""

BEDROCK_FAMILY_TASKS: dict[str, frozenset[str]] = {
    "anthropic": frozenset({"llm/v1/chat", "llm/v1/completions"}),
    "ai21labs": frozenset({"llm/v1/chat", "llm/v1/completions"}),
    "cohere": frozenset({"llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings"}),
    "amazon": frozenset({"llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings"}),
}
"""On Amazon Bedrock the model family decides (e.g. Anthropic models have no embeddings)."""


def problems(spec: ServingEndpointSpec) -> list[str]:
    """Human-readable problems, one per served entity and issue; empty when the config can work."""
    out: list[str] = []
    for entity in spec.served_entities:
        model = entity.external_model
        who = f"served entity {entity.effective_name}"
        if model.provider == "palm":
            out.append(
                f"{who}: the PaLM API is retired and cannot serve requests; use provider google-cloud-vertex-ai "
                "(Gemini) instead"
            )
            continue
        tasks = PROVIDER_TASKS.get(model.provider, frozenset())
        if model.provider == "amazon-bedrock" and model.amazon_bedrock_config is not None:
            bedrock = model.amazon_bedrock_config
            tasks = BEDROCK_FAMILY_TASKS.get(bedrock.bedrock_provider, frozenset())
            if bedrock.uc_service_credential_name is not None:
                out.append(
                    f"{who}: ucServiceCredentialName refers to a Databricks Unity Catalog service credential, "
                    "which does not exist outside Databricks; use awsAccessKeyId/awsSecretAccessKey references "
                    "or instanceProfileArn (the pod's AWS credential chain)"
                )
        if model.task not in tasks:
            family = (
                f" ({model.amazon_bedrock_config.bedrock_provider} models)"
                if model.provider == "amazon-bedrock" and model.amazon_bedrock_config is not None
                else ""
            )
            offered = ", ".join(sorted(tasks)) or "none"
            out.append(f"{who}: provider {model.provider}{family} cannot serve task {model.task} (it offers: {offered})")
    return out
