"""modelgate convert: Databricks create-endpoint bodies <-> ServingEndpoint manifests, losslessly."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelgate_proxy import cli, convert, spec

from .corpus import DATABRICKS, REPO_ROOT, SAMPLES


def load_json(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def run_cli(*argv: str, stdin: str | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str, str]:
    args = cli.build_parser().parse_args(["convert", *argv])
    if stdin is not None and monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    out, err = io.StringIO(), io.StringIO()
    code = convert.run_convert(args, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


# ------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_every_sample_round_trips(path: Path) -> None:
    manifest = yaml.safe_load(path.read_text())
    body = convert.manifest_to_databricks(manifest)
    assert body["name"] == manifest["metadata"]["name"]
    assert "served_entities" in body["config"]
    back = convert.databricks_to_manifest(body)
    assert back.manifest == manifest
    assert back.warnings == []


@pytest.mark.parametrize("path", DATABRICKS, ids=lambda p: p.stem)
def test_every_databricks_body_round_trips(path: Path) -> None:
    body = load_json(path)
    result = convert.databricks_to_manifest(body, namespace="team-a")
    spec.ServingEndpoint.model_validate(result.manifest)
    assert result.manifest["metadata"]["namespace"] == "team-a"
    assert convert.manifest_to_databricks(result.manifest) == body
    # and through YAML text, as the CLI writes it
    text = yaml.safe_dump(result.manifest, sort_keys=False)
    assert convert.manifest_to_databricks(yaml.safe_load(text)) == body


def test_docs_style_anthropic_completions() -> None:
    result = convert.databricks_to_manifest(load_json(DATABRICKS[0].parent / "anthropic-completions.json"))
    assert result.manifest == {
        "apiVersion": "serving.modelgate.io/v1alpha1",
        "kind": "ServingEndpoint",
        "metadata": {
            "name": "anthropic-completions-endpoint",
            "annotations": {
                convert.SCOPES_ANNOTATION: '{"my-anthropic-secret-scope": "my_anthropic_secret_scope"}',
            },
        },
        "spec": {
            "servedEntities": [
                {
                    "externalModel": {
                        "name": "claude-2",
                        "provider": "anthropic",
                        "task": "llm/v1/completions",
                        "anthropicConfig": {
                            "anthropicApiKey": "{{secrets/my-anthropic-secret-scope/anthropic_api_key}}",
                        },
                    }
                }
            ]
        },
    }
    assert result.secrets == [
        convert.RequiredSecret("my-anthropic-secret-scope", ("anthropic_api_key",), "my_anthropic_secret_scope")
    ]


def test_docs_style_bedrock_and_azure_map_every_field() -> None:
    bedrock = convert.databricks_to_manifest(load_json(DATABRICKS[0].parent / "bedrock-access-keys.json"))
    config = bedrock.manifest["spec"]["servedEntities"][0]["externalModel"]["amazonBedrockConfig"]
    assert config == {
        "awsRegion": "us-east-1",
        "awsAccessKeyId": "{{secrets/my-amazon-bedrock-secret-scope/aws_access_key_id}}",
        "awsSecretAccessKey": "{{secrets/my-amazon-bedrock-secret-scope/aws_secret_access_key}}",
        "bedrockProvider": "anthropic",
    }
    assert bedrock.secrets[0].keys == ("aws_access_key_id", "aws_secret_access_key")
    azure = convert.databricks_to_manifest(load_json(DATABRICKS[0].parent / "azure-openai-chat.json"))
    openai = azure.manifest["spec"]["servedEntities"][0]["externalModel"]["openaiConfig"]
    assert openai["openaiApiType"] == "azure"
    assert openai["openaiDeploymentName"] == "my-gpt-35-turbo-deployment"


def test_everything_keeps_unmodelled_fields_and_warns() -> None:
    body = load_json(DATABRICKS[0].parent / "everything.json")
    result = convert.databricks_to_manifest(body)
    meta = result.manifest["metadata"]
    assert meta["name"] == "support-assistant"
    assert meta["annotations"][convert.NAME_ANNOTATION] == "Support_Assistant"
    extra = json.loads(meta["annotations"][convert.EXTRA_ANNOTATION])
    assert set(extra) == {
        "route_optimized", "budget_policy_id", "email_notifications", "rate_limits", "config.auto_capture_config",
        "config.served_entities[1].external_model.amazon_bedrock_config.bedrock_provider",
    }  # fmt: skip
    warned = " ".join(result.warnings)
    for unmodelled in ("route_optimized", "budget_policy_id", "email_notifications", "rate_limits", "auto_capture"):
        assert unmodelled in warned
    bedrock = result.manifest["spec"]["servedEntities"][1]["externalModel"]["amazonBedrockConfig"]
    assert bedrock["bedrockProvider"] == "anthropic"  # Databricks is case-insensitive; the CRD is not
    assert result.manifest["spec"]["aiGateway"]["rateLimits"][2] == {
        "calls": 10, "key": "user_group", "principal": "data-scientists", "renewalPeriod": "minute"
    }  # fmt: skip
    assert result.manifest["spec"]["tags"] == body["tags"]
    assert result.manifest["spec"]["description"] == body["description"]


def test_legacy_served_model_name_routes() -> None:
    body = load_json(DATABRICKS[0].parent / "traffic-split-legacy-route.json")
    result = convert.databricks_to_manifest(body)
    routes = result.manifest["spec"]["trafficConfig"]["routes"]
    assert routes == [
        {"servedEntityName": "served_model_name_1", "trafficPercentage": 50},
        {"servedEntityName": "served_model_name_2", "trafficPercentage": 50},
    ]
    assert convert.manifest_to_databricks(result.manifest)["config"]["traffic_config"] == body["config"]["traffic_config"]


# ------------------------------------------------------------------------------------ names and secrets


@pytest.mark.parametrize(
    ("databricks", "kubernetes"),
    [
        ("my-endpoint", "my-endpoint"),
        ("My_External_OpenAI_Chat", "my-external-openai-chat"),
        ("team.ml@prod", "team-ml-prod"),
        ("__a__b__", "a-b"),
    ],
)
def test_name_rule(databricks: str, kubernetes: str) -> None:
    assert convert.kubernetes_name(databricks) == kubernetes


def test_name_rule_hashes_empty_and_too_long_names() -> None:
    empty = convert.kubernetes_name("___", fallback="endpoint")
    assert empty.startswith("endpoint-")
    assert len(empty) == len("endpoint-") + 6
    long = convert.kubernetes_name("a" * 100)
    assert len(long) == 63
    assert long != convert.kubernetes_name("a" * 101)


def test_scopes_that_collide_get_a_hash_and_valid_names_stay() -> None:
    mapping = convert.map_scopes(["my_scope", "my-scope", "My.Scope", "other_scope"])
    assert mapping["my-scope"] == "my-scope"
    assert mapping["other_scope"] == "other-scope"
    hashed = {mapping["my_scope"], mapping["My.Scope"]}
    assert len(hashed) == 2
    assert all(n.startswith("my-scope-") for n in hashed)
    assert convert.map_scopes(["other_scope", "My.Scope", "my-scope", "my_scope"]) == mapping  # order-free


def test_secret_reference_whitespace_and_keys_are_kept() -> None:
    body = load_json(DATABRICKS[0].parent / "anthropic-completions.json")
    config = body["config"]["served_entities"][0]["external_model"]["anthropic_config"]
    config["anthropic_api_key"] = "{{ secrets/Prod_Keys/anthropic.api_key }}"
    result = convert.databricks_to_manifest(body)
    ref = result.manifest["spec"]["servedEntities"][0]["externalModel"]["anthropicConfig"]["anthropicApiKey"]
    assert ref == "{{ secrets/prod-keys/anthropic.api_key }}"
    assert spec.parse_secret_ref(ref) == ("prod-keys", "anthropic.api_key")
    assert convert.manifest_to_databricks(result.manifest) == body


def test_plaintext_credentials_convert_with_a_warning_and_no_secret() -> None:
    body = load_json(DATABRICKS[0].parent / "anthropic-completions.json")
    config = body["config"]["served_entities"][0]["external_model"]["anthropic_config"]
    config.pop("anthropic_api_key")
    config["anthropic_api_key_plaintext"] = "sk-ant-not-a-real-key"
    result = convert.databricks_to_manifest(body)
    assert result.secrets == []
    assert any("anthropic_api_key_plaintext" in w and "sk-ant" not in w for w in result.warnings)
    assert convert.manifest_to_databricks(result.manifest) == body


# ------------------------------------------------------------------------------------ errors


def test_invalid_bodies_name_the_field_in_both_vocabularies() -> None:
    body = load_json(DATABRICKS[0].parent / "azure-openai-chat.json")
    del body["config"]["served_entities"][0]["external_model"]["openai_config"]["openai_api_version"]
    with pytest.raises(convert.ConversionError) as info:
        convert.databricks_to_manifest(body)
    message = str(info.value)
    assert "spec.servedEntities[0].externalModel.openaiConfig" in message
    assert "config.served_entities[0].external_model.openai_config" in message
    assert "openaiApiVersion is required when openaiApiType is azure or azuread" in message


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda b: b.pop("name"), "name: the endpoint name is required"),
        (lambda b: b.pop("config"), "config.served_entities: required"),
        (lambda b: b["config"]["served_entities"][0]["external_model"].update(provider="aws-bedrock"),
         "config.served_entities[0].external_model.provider"),
        (lambda b: b["config"]["served_entities"][0]["external_model"]["anthropic_config"].update(
            anthropic_api_key="{{secrets/}}"), "anthropic_api_key"),
    ],
    ids=["no-name", "no-config", "unknown-provider", "placeholder-secret"],
)
def test_conversion_errors(edit: Any, expected: str) -> None:
    body = load_json(DATABRICKS[0].parent / "anthropic-completions.json")
    edit(body)
    with pytest.raises(convert.ConversionError, match=None) as info:
        convert.databricks_to_manifest(body)
    assert expected in str(info.value)


def test_manifest_only_fields_are_reported() -> None:
    manifest = yaml.safe_load((REPO_ROOT / "samples" / "anthropic-chat.yaml").read_text())
    manifest["metadata"]["namespace"] = "team-a"
    manifest["spec"]["proxy"] = {"replicas": 2}
    model = manifest["spec"]["servedEntities"][0]["externalModel"]
    model["anthropicConfig"]["anthropicApiBase"] = "https://anthropic.internal.example.com"
    result = convert.convert_manifest(manifest)
    assert "proxy" not in result.body
    assert "proxy" not in result.body["config"]
    warned = "\n".join(result.warnings)
    assert "spec.proxy" in warned
    assert "metadata.namespace" in warned
    assert "anthropicApiBase" in warned
    assert result.body["config"]["served_entities"][0]["external_model"]["anthropic_config"]["anthropic_api_base"]


def test_an_invalid_manifest_is_refused() -> None:
    manifest = yaml.safe_load(SAMPLES[0].read_text())
    manifest["spec"]["servedEntities"] = []
    with pytest.raises(convert.ConversionError, match=r"spec\.servedEntities"):
        convert.manifest_to_databricks(manifest)


def test_an_invalid_endpoint_name_is_mapped_not_refused() -> None:
    body = load_json(DATABRICKS[0].parent / "custom-bearer.json")
    body["name"] = "x" * 70 + "_Chat"
    manifest = convert.databricks_to_manifest(body).manifest
    assert len(manifest["metadata"]["name"]) <= 63
    assert convert.manifest_to_databricks(manifest)["name"] == body["name"]


# ------------------------------------------------------------------------------------ CLI


def test_cli_databricks_to_manifest_prints_the_secrets_to_create(tmp_path: Path) -> None:
    code, out, err = run_cli(str(DATABRICKS[0].parent / "everything.json"), "-n", "team-a")
    assert code == 0
    manifest = yaml.safe_load(out)
    assert manifest["kind"] == "ServingEndpoint"
    assert manifest["metadata"]["namespace"] == "team-a"
    assert "kubectl create secret generic team-ml-prod -n team-a --from-literal=openai_api_key=" in err
    assert "'Team.ML@prod'" in err
    assert "kubectl create secret generic my-scope -n team-a --from-literal=aws_secret_access_key=" in err
    assert "warning: route_optimized" in err
    # and back, detected from the input
    (tmp_path / "endpoint.yaml").write_text(out)
    code, out, err = run_cli(str(tmp_path / "endpoint.yaml"))
    assert code == 0
    assert json.loads(out) == load_json(DATABRICKS[0].parent / "everything.json")


def test_cli_reads_stdin_yaml_and_honours_to(monkeypatch: pytest.MonkeyPatch) -> None:
    body = load_json(DATABRICKS[0].parent / "custom-bearer.json")
    code, out, _ = run_cli("-", "--to", "k8s", stdin=yaml.safe_dump(body), monkeypatch=monkeypatch)
    assert code == 0
    assert yaml.safe_load(out)["spec"]["servedEntities"][0]["externalModel"]["provider"] == "custom"


def test_cli_reports_errors_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hello": "world"}))
    code, out, err = run_cli(str(bad))
    assert code == 1
    assert out == ""
    assert err.startswith("modelgate convert: cannot tell what the input is")
    code, _, err = run_cli(str(tmp_path / "missing.json"))
    assert code == 1
    assert "missing.json" in err


def test_cli_writes_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    code, out, _ = run_cli(str(SAMPLES[0]), "-o", str(target))
    assert code == 0
    assert out == ""
    assert json.loads(target.read_text()) == convert.manifest_to_databricks(yaml.safe_load(SAMPLES[0].read_text()))


def test_round_trip_does_not_mutate_its_input() -> None:
    body = load_json(DATABRICKS[0].parent / "everything.json")
    before = copy.deepcopy(body)
    manifest = convert.databricks_to_manifest(body).manifest
    assert body == before
    snapshot = copy.deepcopy(manifest)
    convert.manifest_to_databricks(manifest)
    assert manifest == snapshot
