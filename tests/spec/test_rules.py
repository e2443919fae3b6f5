"""The spec models' own rules, without an API server."""

from __future__ import annotations

import copy
import inspect
from typing import Any

import pytest
from pydantic import ValidationError

from modelgate_proxy import spec
from modelgate_proxy.spec.rules import Rule
from modelgate_proxy.spec.spec_model import SpecModel

from .corpus import INVALID, load_invalid


def all_models() -> list[type[SpecModel]]:
    found: set[type[SpecModel]] = set()
    for module in (spec.endpoint, spec.gateway, spec.provider_configs, spec.status):
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, SpecModel) and obj is not SpecModel:
                found.add(obj)
    return sorted(found, key=lambda m: m.__name__)


def all_rules() -> list[tuple[str, Rule]]:
    return [(m.__name__, r) for m in all_models() for r in m.rules]


def chat(**config: Any) -> dict[str, Any]:
    return {
        "apiVersion": spec.API_VERSION,
        "kind": spec.KIND,
        "metadata": {"name": "e"},
        "spec": {
            "servedEntities": [
                {
                    "externalModel": {
                        "name": "gpt-4o",
                        "provider": "openai",
                        "task": "llm/v1/chat",
                        "openaiConfig": config or {"openaiApiKey": "{{secrets/openai/api-key}}"},
                    }
                }
            ]
        },
    }


def test_there_are_cross_field_rules_on_every_level() -> None:
    owners = {owner for owner, _ in all_rules()}
    assert {"OpenAIConfig", "AmazonBedrockConfig", "CustomProviderConfig", "ExternalModel", "ServedEntity",
            "TrafficConfig", "ServingEndpointSpec", "RateLimit", "InferenceTableConfig"} <= owners  # fmt: skip


@pytest.mark.parametrize(("owner", "rule"), all_rules(), ids=lambda v: v if isinstance(v, str) else v.message[:40])
def test_every_rule_reports_a_field_with_a_reason_the_api_server_prints(owner: str, rule: Rule) -> None:
    assert rule.field_path
    assert rule.field_path.startswith(".")
    # A FieldValueDuplicate reason makes the API server print `Duplicate value: "object"` without the message.
    assert rule.reason in {"FieldValueRequired", "FieldValueForbidden", "FieldValueInvalid"}
    assert rule.message
    assert "self." not in rule.message, "say the condition in words, not in CEL"
    assert rule.to_crd()["rule"] == rule.cel


def test_every_rule_is_broken_by_some_invalid_manifest() -> None:
    """The invalid corpus exercises every rule (so the CEL twin of each is checked by the API-server test)."""
    rejected: list[str] = []
    for path in INVALID:
        try:
            spec.ServingEndpoint.model_validate(load_invalid(path).manifest)
        except ValidationError as exc:
            rejected.append(str(exc))
    unexercised = [r.message for _, r in all_rules() if not any(r.message in text for text in rejected)]
    assert unexercised == []


def _crd_validations(node: Any) -> list[dict[str, str]]:
    if isinstance(node, dict):
        own = node.get("x-kubernetes-validations", [])
        return [*own, *(v for child in node.values() for v in _crd_validations(child))]
    if isinstance(node, list):
        return [v for child in node for v in _crd_validations(child)]
    return []


def test_every_rule_is_in_the_crd_with_its_message_and_field() -> None:
    from modelgate_operator import crd

    in_crd = {(v["rule"], v["message"], v.get("fieldPath")) for v in _crd_validations(crd.build_crd())}
    assert {(r.cel, r.message, r.field_path) for _, r in all_rules()} <= in_crd


def test_default_entity_name_replaces_dots_and_colons() -> None:
    assert spec.default_entity_name("anthropic.claude-3-5-sonnet-20241022-v2:0") == (
        "anthropic-claude-3-5-sonnet-20241022-v2-0"
    )
    entity = spec.ServedEntity.model_validate(
        {"externalModel": {"name": "gpt-4.1", "provider": "openai", "task": "llm/v1/chat",
                           "openaiConfig": {"openaiApiKeyPlaintext": "sk-x"}}}
    )
    assert entity.effective_name == "gpt-4-1"
    assert entity.external_model.provider_config == spec.OpenAIConfig(openai_api_key_plaintext="sk-x")


def test_secret_reference_parsing() -> None:
    assert spec.parse_secret_ref("{{secrets/openai/api-key}}") == ("openai", "api-key")
    assert spec.parse_secret_ref("{{ secrets/vertex-sa/key.json }}") == spec.SecretRef("vertex-sa", "key.json")
    assert str(spec.SecretRef("a", "b")) == "{{secrets/a/b}}"
    for bad in ("sk-live-123", "{{secrets/My_Scope/k}}", "{{secrets/a/b c}}", "{{secrets/a}}", "secrets/a/b"):
        assert not spec.is_secret_ref(bad)
        with pytest.raises(ValueError, match="secret reference of the form") as info:
            spec.parse_secret_ref(bad)
        assert bad not in str(info.value), "a rejected value (maybe a real key) must not be echoed"


def test_all_failing_rules_are_reported_at_once() -> None:
    manifest = chat(openaiApiType="azure", openaiApiKey="{{secrets/a/b}}")
    with pytest.raises(ValidationError) as info:
        spec.ServingEndpoint.model_validate(manifest)
    text = str(info.value)
    for name in ("openaiApiBase", "openaiApiVersion", "openaiDeploymentName"):
        assert f"{name}: {name} " in text
    assert text.count("is required when openaiApiType is azure or azuread") == 3


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "aiGateway"), {"fallbackConfig": {"enabled": "yes"}}),
        (("spec", "proxy"), {"replicas": "2"}),
        (("spec", "trafficConfig"), {"routes": [{"servedEntityName": "gpt-4o", "trafficPercentage": 100.0}]}),
    ],
)
def test_types_are_strict_like_the_api_server(path: tuple[str, str], value: Any) -> None:
    manifest = chat()
    manifest[path[0]][path[1]] = value
    with pytest.raises(ValidationError):
        spec.ServingEndpoint.model_validate(manifest)


def test_unknown_fields_are_errors() -> None:
    manifest = chat(openaiApiKey="{{secrets/a/b}}", openaiApiKye="{{secrets/a/b}}")
    with pytest.raises(ValidationError, match="openaiApiKye"):
        spec.ServingEndpoint.model_validate(manifest)


def test_zero_percent_route_and_defaulted_names_are_valid() -> None:
    manifest = chat()
    entities = manifest["spec"]["servedEntities"]
    second = copy.deepcopy(entities[0])
    second["externalModel"]["name"] = "gpt-4.1-mini"
    entities.append(second)
    manifest["spec"]["trafficConfig"] = {
        "routes": [{"servedEntityName": "gpt-4o", "trafficPercentage": 100},
                   {"servedEntityName": "gpt-4-1-mini", "trafficPercentage": 0}]
    }
    endpoint = spec.ServingEndpoint.model_validate(manifest)
    assert [e.effective_name for e in endpoint.spec.served_entities] == ["gpt-4o", "gpt-4-1-mini"]
    assert endpoint.to_manifest()["spec"] == manifest["spec"]


def test_entra_and_instance_profile_need_no_api_key() -> None:
    entra = chat(openaiApiType="azuread", openaiApiBase="https://r.openai.azure.com/", openaiApiVersion="2024-10-21",
                 openaiDeploymentName="d", microsoftEntraTenantId="t", microsoftEntraClientId="c",
                 microsoftEntraClientSecretPlaintext="s")  # fmt: skip
    assert spec.ServingEndpoint.model_validate(entra).spec.task == "llm/v1/chat"
    bedrock = spec.AmazonBedrockConfig.model_validate(
        {"awsRegion": "us-east-1", "bedrockProvider": "amazon", "instanceProfileArn": "arn:aws:iam::123456789012:x"}
    )
    assert bedrock.aws_access_key_id is None
