"""Checks only the operator can make: the schema (and its CEL rules) accepted the spec, but it cannot work.

Each problem becomes part of ``ConfigValid=False`` (reason ``InvalidConfig``) with a message that says what to
change. Nothing here looks at a credential's value.

Which provider serves which task is not written down here: it is what the proxy's adapters declare (their
``tasks`` class variable, found through the proxy's dispatch table), so the operator and the proxy cannot
disagree. A retired adapter (``retired = True``, e.g. PaLM) serves nothing. On Amazon Bedrock the model family
also matters: chat and completions go through the Converse API, which every family supports, but embeddings
only exist for the families the Bedrock embeddings module can call.
"""

from __future__ import annotations

from functools import cache

from modelgate_proxy.errors import ProviderConfigError
from modelgate_proxy.providers.bedrock_embeddings import EMBEDDING_FAMILIES
from modelgate_proxy.providers.registry import adapter_class
from modelgate_proxy.spec import ServingEndpointSpec

EMBEDDINGS = "llm/v1/embeddings"


@cache
def provider_tasks(provider: str) -> frozenset[str]:
    """The tasks the proxy's adapter for ``provider`` serves (empty when there is none or it is retired)."""
    try:
        cls = adapter_class(provider)
    except ProviderConfigError:
        return frozenset()
    if getattr(cls, "retired", False):
        return frozenset()
    return frozenset(cls.tasks)


def bedrock_family_tasks(family: str) -> frozenset[str]:
    """The tasks of Amazon Bedrock models of one ``bedrockProvider`` family."""
    tasks = provider_tasks("amazon-bedrock")
    return tasks if family in EMBEDDING_FAMILIES else tasks - {EMBEDDINGS}


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
        tasks = provider_tasks(model.provider)
        family = ""
        if model.provider == "amazon-bedrock" and model.amazon_bedrock_config is not None:
            bedrock = model.amazon_bedrock_config
            tasks = bedrock_family_tasks(bedrock.bedrock_provider)
            family = f" ({bedrock.bedrock_provider} models)"
            if bedrock.uc_service_credential_name is not None:
                out.append(
                    f"{who}: ucServiceCredentialName refers to a Databricks Unity Catalog service credential, "
                    "which does not exist outside Databricks; use awsAccessKeyId/awsSecretAccessKey references "
                    "or instanceProfileArn (the pod's AWS credential chain)"
                )
        if model.task not in tasks:
            offered = ", ".join(sorted(tasks)) or "none"
            out.append(f"{who}: provider {model.provider}{family} cannot serve task {model.task} (it offers: {offered})")
    return out
