"""The spec's capability table is what the proxy's adapters do: the operator (which reads only the table) and
the proxy cannot disagree."""

from __future__ import annotations

import asyncio
from typing import get_args

import pytest

from modelgate_proxy.errors import ProviderConfigError, ProviderRetired
from modelgate_proxy.providers.bedrock import BedrockProvider
from modelgate_proxy.providers.registry import ADAPTERS, adapter_class
from modelgate_proxy.spec import AmazonBedrockConfig, ExternalModel, Provider
from modelgate_proxy.spec.capabilities import (
    PROVIDER_TASKS,
    RETIRED_PROVIDERS,
    UC_SERVICE_CREDENTIAL_MESSAGE,
    bedrock_config_problem,
    servable_tasks,
)
from tests.providers.helpers import NoHttp, PlainCredentials


def test_the_table_names_every_provider_of_the_spec_and_of_the_registry() -> None:
    assert set(PROVIDER_TASKS) == set(get_args(Provider)) == set(ADAPTERS)


@pytest.mark.parametrize("provider", sorted(ADAPTERS))
def test_every_registered_adapter_accepts_exactly_the_tables_tasks(provider: str) -> None:
    cls = adapter_class(provider)
    assert cls.tasks == PROVIDER_TASKS[provider]
    assert bool(getattr(cls, "retired", False)) == (provider in RETIRED_PROVIDERS)


def test_a_retired_provider_serves_nothing_and_its_adapter_refuses_with_the_tables_message() -> None:
    assert RETIRED_PROVIDERS, "the table must name PaLM"
    for provider, message in RETIRED_PROVIDERS.items():
        assert servable_tasks(provider) == frozenset()
        adapter = adapter_class(provider).__new__(adapter_class(provider))
        with pytest.raises(ProviderRetired) as refused:
            asyncio.run(adapter.build_request(None, {}))  # type: ignore[arg-type]
        assert message in str(refused.value)


def test_unknown_providers_serve_nothing() -> None:
    assert servable_tasks("no-such-provider") == frozenset()


def test_bedrock_embeddings_depend_on_the_family() -> None:
    assert "llm/v1/embeddings" in servable_tasks("amazon-bedrock", "amazon")
    assert "llm/v1/embeddings" not in servable_tasks("amazon-bedrock", "anthropic")
    assert servable_tasks("amazon-bedrock", "anthropic") == {"llm/v1/chat", "llm/v1/completions"}


def test_uc_service_credential_is_refused_with_the_same_words_on_both_sides() -> None:
    config = {"awsRegion": "us-east-1", "bedrockProvider": "amazon", "ucServiceCredentialName": "cred"}
    assert bedrock_config_problem(AmazonBedrockConfig.model_validate(config)) == UC_SERVICE_CREDENTIAL_MESSAGE
    model = ExternalModel.model_validate({"name": "m", "provider": "amazon-bedrock", "task": "llm/v1/chat",
                                          "amazonBedrockConfig": config})
    with pytest.raises(ProviderConfigError) as refused:
        BedrockProvider(model, PlainCredentials(), NoHttp())
    assert str(refused.value) == UC_SERVICE_CREDENTIAL_MESSAGE
    fine = {"awsRegion": "us-east-1", "bedrockProvider": "amazon", "instanceProfileArn": "arn:aws:iam::123456789012:instance-profile/x"}
    assert bedrock_config_problem(AmazonBedrockConfig.model_validate(fine)) is None
