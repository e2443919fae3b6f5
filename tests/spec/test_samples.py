"""samples/*.yaml: valid for the models and for the real API server, one per provider and variant, each with
the Secrets it needs written down as a comment."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from modelgate_dev.devcluster import DevCluster
from modelgate_proxy import spec

from .corpus import REPO_ROOT, SAMPLES

REQUIRED = {
    "openai-chat", "openai-completions", "openai-embeddings", "azure-openai-key", "azure-openai-entra",
    "anthropic-chat", "anthropic-completions", "cohere-chat", "cohere-embeddings", "bedrock-anthropic",
    "bedrock-cohere", "bedrock-ai21labs", "bedrock-amazon", "bedrock-instance-profile", "vertex-gemini",
    "databricks-model-serving", "ai21labs-chat", "custom-bearer", "custom-api-key", "traffic-split", "ai-gateway",
}  # fmt: skip


def load(path: Path) -> spec.ServingEndpoint:
    return spec.ServingEndpoint.model_validate(yaml.safe_load(path.read_text()))


def test_samples_cover_every_provider_and_variant() -> None:
    assert {p.stem for p in SAMPLES} >= REQUIRED
    endpoints = [load(p) for p in SAMPLES]
    models = [e.external_model for ep in endpoints for e in ep.spec.served_entities]
    assert {m.provider for m in models} == set(spec.PROVIDER_CONFIG_FIELDS)
    assert {m.task for m in models} == set(spec.TASKS)
    bedrock = [m.amazon_bedrock_config for m in models if m.amazon_bedrock_config]
    assert {b.bedrock_provider for b in bedrock} == {"anthropic", "cohere", "ai21labs", "amazon"}
    assert any(b.instance_profile_arn for b in bedrock)
    assert {m.openai_config.openai_api_type for m in models if m.openai_config} >= {None, "azure", "azuread"}
    customs = [m.custom_provider_config for m in models if m.custom_provider_config]
    assert any(c.bearer_token_auth for c in customs)
    assert any(c.api_key_auth for c in customs)
    gateway = load(REPO_ROOT / "samples" / "ai-gateway.yaml").spec.ai_gateway
    assert gateway
    assert gateway.usage_tracking_config
    assert gateway.inference_table_config
    assert gateway.guardrails
    assert gateway.guardrails.input
    assert gateway.guardrails.output
    assert gateway.fallback_config
    assert {r.key for r in gateway.rate_limits or []} == {"endpoint", "user", "user_group", "service_principal"}
    split = load(REPO_ROOT / "samples" / "traffic-split.yaml").spec
    assert split.traffic_config
    assert len({e.external_model.provider for e in split.served_entities}) > 1


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_is_valid_namespace_less_and_names_its_secrets(path: Path) -> None:
    text = path.read_text()
    endpoint = load(path)
    assert endpoint.metadata.namespace is None, "samples are applied with kubectl apply -n <namespace>"
    assert endpoint.name == path.stem
    hints = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    for name, key in re.findall(r"\{\{secrets/([^/]+)/([^}]+)\}\}", text):
        assert re.search(rf"kubectl create secret generic {re.escape(name)} .*?--from-(literal|file)={re.escape(key)}=",
                         hints, flags=re.DOTALL), f"no commented hint for Secret {name} key {key}"  # fmt: skip
    assert "Plaintext" not in text, "samples reference Secrets; they never inline a credential"


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_is_accepted_by_the_api_server(path: Path, k8s: DevCluster, dry_run_namespace: str) -> None:
    res = k8s.kubectl("apply", "--dry-run=server", "-n", dry_run_namespace, "-f", str(path), check=False)
    assert res.returncode == 0, res.stderr
    assert "created (server dry run)" in res.stdout
