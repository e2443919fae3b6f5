"""modelgate convert: Databricks create-endpoint bodies <-> ServingEndpoint manifests, losslessly.

Besides the REST bodies, tests/spec/databricks/ holds the other accepted shapes: `mlflow-config.json`, a bare
endpoint config as MLflow's legacy `create_endpoint(name=..., config=...)` takes it (no name: the endpoint is named
after the file; `tags` and legacy `rate_limits` inside it); `flat-body.json`, `name` beside `served_entities`
(with legacy `rate_limits` next to an `ai_gateway` without rate limits); and `legacy-rate-limits.json`, a REST
body whose only limits are the legacy top-level `rate_limits`."""

from __future__ import annotations

import copy
import io
import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelgate_dev.devcluster import DevCluster
from modelgate_proxy import cli, spec
from modelgate_proxy.cli import convert as convert_cli
from modelgate_proxy.spec import databricks_bodies as convert

from .corpus import DATABRICKS, REPO_ROOT, SAMPLES


def load_json(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def fixture(name: str) -> dict[str, Any]:
    return load_json(DATABRICKS[0].parent / name)


def fixture_name(path: Path) -> str | None:
    """The endpoint name a fixture without one gets (as the CLI names it: after the file)."""
    return None if "name" in load_json(path) else convert.kubernetes_name(path.stem)


def run_cli(*argv: str, stdin: str | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str, str]:
    args = cli.build_parser().parse_args(["convert", *argv])
    if stdin is not None and monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    out, err = io.StringIO(), io.StringIO()
    code = convert_cli.run_convert(args, stdout=out, stderr=err)
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
    document = load_json(path)
    name = fixture_name(path)
    result = convert.databricks_to_manifest(document, namespace="team-a", name=name)
    spec.ServingEndpoint.model_validate(result.manifest)
    assert result.manifest["metadata"]["namespace"] == "team-a"
    # the way back writes the REST body: the document itself, or the REST body a flat document stands for
    body = convert.rest_body(document, name=name)
    assert (body == document) == (result.shape == "body")
    assert convert.manifest_to_databricks(result.manifest) == body
    # and through YAML text, as the CLI writes it
    text = yaml.safe_dump(result.manifest, sort_keys=False)
    assert convert.manifest_to_databricks(yaml.safe_load(text)) == body
    # the manifest does not depend on the shape the endpoint was written in
    assert convert.databricks_to_manifest(body, namespace="team-a").manifest == result.manifest


@pytest.mark.parametrize("path", DATABRICKS, ids=lambda p: p.stem)
def test_every_converted_body_is_accepted_by_the_api_server(
    path: Path, k8s: DevCluster, dry_run_namespace: str
) -> None:
    manifest = convert.databricks_to_manifest(load_json(path), name=fixture_name(path)).manifest
    text = yaml.safe_dump(manifest, sort_keys=False)
    res = k8s.kubectl("apply", "--dry-run=server", "-n", dry_run_namespace, "-f", "-", input=text, check=False)
    assert res.returncode == 0, res.stderr
    assert "created (server dry run)" in res.stdout


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
    # ai_gateway.rate_limits is set: the legacy ones stay in the annotation, and the warning says they do nothing
    assert "rate_limits: legacy rate limits are not enforced because ai_gateway.rate_limits is set" in warned
    assert len(result.manifest["spec"]["aiGateway"]["rateLimits"]) == len(body["ai_gateway"]["rate_limits"])
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


# ------------------------------------------------------------------------------------ input shapes


def test_bare_config_as_mlflow_takes_it() -> None:
    config = fixture("mlflow-config.json")
    result = convert.databricks_to_manifest(config, name="chat")
    assert result.shape == "config"
    endpoint = spec.ServingEndpoint.model_validate(result.manifest)
    assert endpoint.name == "chat"
    manifest_spec = result.manifest["spec"]
    assert manifest_spec["tags"] == config["tags"]  # applied, not only kept
    assert manifest_spec["aiGateway"] == {"rateLimits": [{"calls": 100, "key": "user", "renewalPeriod": "minute"}]}
    assert [r["trafficPercentage"] for r in manifest_spec["trafficConfig"]["routes"]] == [80, 20]
    extra = json.loads(result.manifest["metadata"]["annotations"][convert.EXTRA_ANNOTATION])
    assert extra == {"$moved": {"rate_limits": "ai_gateway.rate_limits"}, "$created": ["ai_gateway"]}
    assert any("bare endpoint config" in w for w in result.warnings)
    assert convert.manifest_to_databricks(result.manifest) == {
        "name": "chat",
        "config": {"served_entities": config["served_entities"], "traffic_config": config["traffic_config"]},
        "tags": config["tags"],
        "rate_limits": config["rate_limits"],
    }


def test_bare_config_reads_as_the_body_mlflow_sends() -> None:
    from mlflow.deployments.databricks import DatabricksDeploymentClient

    client = DatabricksDeploymentClient("databricks")
    sent: list[dict[str, Any]] = []
    client._call_endpoint = lambda **kw: sent.append(kw["json_body"])  # type: ignore[method-assign]
    config = fixture("mlflow-config.json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow deprecates this calling convention
        client.create_endpoint(name="chat", config=copy.deepcopy(config))
    payload = sent[0]
    assert payload.pop("route_optimized") is False  # MLflow's default, Databricks' too
    assert convert.rest_body(config, name="chat") == payload
    from_config = convert.databricks_to_manifest(config, name="chat")
    assert convert.databricks_to_manifest(payload).manifest == from_config.manifest


def test_flat_body_with_a_name() -> None:
    flat = fixture("flat-body.json")
    result = convert.databricks_to_manifest(flat)
    assert result.shape == "flat"
    spec.ServingEndpoint.model_validate(result.manifest)
    meta = result.manifest["metadata"]
    assert meta["name"] == "cohere-chat"
    assert meta["annotations"][convert.NAME_ANNOTATION] == "Cohere_Chat"
    gateway = result.manifest["spec"]["aiGateway"]
    assert gateway["usageTrackingConfig"] == {"enabled": True}
    assert gateway["rateLimits"] == [
        {"calls": 1000, "key": "endpoint", "renewalPeriod": "minute"},
        {"calls": 20, "key": "user", "renewalPeriod": "minute"},
    ]
    extra = json.loads(meta["annotations"][convert.EXTRA_ANNOTATION])
    assert extra == {"route_optimized": False, "$moved": {"rate_limits": "ai_gateway.rate_limits"}}
    body = convert.manifest_to_databricks(result.manifest)
    assert body["config"] == {"served_entities": flat["served_entities"]}
    assert body["ai_gateway"] == flat["ai_gateway"]
    assert body == convert.rest_body(flat)


def test_a_name_that_disagrees_with_the_document_is_refused() -> None:
    with pytest.raises(convert.ConversionError, match="name: the input names the endpoint 'Cohere_Chat', not 'x'"):
        convert.databricks_to_manifest(fixture("flat-body.json"), name="x")
    assert convert.databricks_to_manifest(fixture("flat-body.json"), name="Cohere_Chat").shape == "flat"
    with pytest.raises(convert.ConversionError, match="name: the endpoint name is required"):
        convert.databricks_to_manifest(fixture("mlflow-config.json"))


def test_flat_input_errors_name_the_field_where_it_is() -> None:
    config = fixture("mlflow-config.json")
    del config["served_entities"][0]["external_model"]["task"]
    with pytest.raises(convert.ConversionError) as info:
        convert.databricks_to_manifest(config, name="chat")
    assert "(Databricks: served_entities[0].external_model.task)" in str(info.value)


# ------------------------------------------------------------------------------------ legacy rate limits


def test_legacy_rate_limits_are_enforced_as_ai_gateway_rate_limits() -> None:
    body = fixture("legacy-rate-limits.json")
    result = convert.databricks_to_manifest(body)
    endpoint = spec.ServingEndpoint.model_validate(result.manifest)
    assert endpoint.spec.ai_gateway
    limits = endpoint.spec.ai_gateway.rate_limits or []
    assert [(r.calls, r.key, r.renewal_period) for r in limits] == [(600, "endpoint", "minute"), (10, "user", "minute")]
    assert any(w.startswith("rate_limits: Databricks' legacy endpoint rate limits; enforced") for w in result.warnings)
    assert not any("ignored by modelgate" in w for w in result.warnings)
    # edits to the limits in the manifest come back at the top level
    manifest = copy.deepcopy(result.manifest)
    manifest["spec"]["aiGateway"]["rateLimits"][1]["calls"] = 5
    back = convert.manifest_to_databricks(manifest)
    assert "ai_gateway" not in back
    assert back["rate_limits"][1] == {"calls": 5, "key": "user", "renewal_period": "minute"}
    # and features added beside them stay in ai_gateway
    manifest["spec"]["aiGateway"]["fallbackConfig"] = {"enabled": True}
    back = convert.manifest_to_databricks(manifest)
    assert back["ai_gateway"] == {"fallback_config": {"enabled": True}}
    assert len(back["rate_limits"]) == 2


@pytest.mark.parametrize(
    "gateway",
    [{}, None, {"rate_limits": None}, {"guardrails": {"input": {"invalid_keywords": ["x"]}}}],
    ids=["empty", "null", "null-rate-limits", "guardrails"],
)
def test_legacy_rate_limits_round_trip_beside_any_ai_gateway(gateway: Any) -> None:
    body = fixture("legacy-rate-limits.json")
    body["ai_gateway"] = gateway
    result = convert.databricks_to_manifest(body)
    assert len(result.manifest["spec"]["aiGateway"]["rateLimits"]) == 2
    spec.ServingEndpoint.model_validate(result.manifest)
    assert convert.manifest_to_databricks(result.manifest) == body


def test_legacy_rate_limits_that_do_not_fit_are_named_where_they_are() -> None:
    body = fixture("legacy-rate-limits.json")
    body["rate_limits"][1]["renewal_period"] = "hour"
    with pytest.raises(convert.ConversionError) as info:
        convert.databricks_to_manifest(body)
    assert "spec.aiGateway.rateLimits[1].renewalPeriod (Databricks: rate_limits[1].renewal_period)" in str(info.value)


def test_empty_legacy_rate_limits_stay_in_the_annotation() -> None:
    body = fixture("legacy-rate-limits.json")
    body["rate_limits"] = []
    result = convert.databricks_to_manifest(body)
    assert "aiGateway" not in result.manifest["spec"]
    assert convert.manifest_to_databricks(result.manifest) == body


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


def test_cli_names_an_endpoint_after_its_file_or_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "My_Chat.v2.json"
    source.write_text(json.dumps(fixture("mlflow-config.json")))
    code, out, err = run_cli(str(source))
    assert code == 0
    assert yaml.safe_load(out)["metadata"]["name"] == "my-chat-v2"
    assert "warning: name: not in the input; the endpoint is named 'my-chat-v2' after the file 'My_Chat.v2'" in err
    code, out, err = run_cli(str(source), "--name", "Team_Chat")
    assert code == 0
    manifest = yaml.safe_load(out)
    assert manifest["metadata"]["name"] == "team-chat"
    assert "'Team_Chat' (--name)" in err
    (tmp_path / "endpoint.yaml").write_text(out)
    code, out, _ = run_cli(str(tmp_path / "endpoint.yaml"))
    assert code == 0
    assert json.loads(out) == convert.rest_body(fixture("mlflow-config.json"), name="Team_Chat")
    code, out, err = run_cli("-", stdin=source.read_text(), monkeypatch=monkeypatch)
    assert (code, out) == (1, "")
    assert "name: the input has no endpoint name; pass --name" in err


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


@pytest.mark.parametrize("field", ["workload_size", "scale_to_zero_enabled", "entity_name"])
def test_an_external_model_with_custom_model_fields_is_refused_as_databricks_does(field: str) -> None:
    body = load_json(DATABRICKS[0].parent / "anthropic-completions.json")
    body["config"]["served_entities"][0][field] = {"workload_size": "Small", "scale_to_zero_enabled": True,
                                                   "entity_name": "main.default.model"}[field]  # fmt: skip
    with pytest.raises(convert.ConversionError) as info:
        convert.databricks_to_manifest(body)
    assert f"config.served_entities[0]: external_model cannot be combined with {field}" in str(info.value)


def test_a_capitalised_bedrock_provider_is_read_lowercased_with_a_warning() -> None:
    body = load_json(DATABRICKS[0].parent / "everything.json")
    result = convert.databricks_to_manifest(body)
    path = "config.served_entities[1].external_model.amazon_bedrock_config.bedrock_provider"
    original = body["config"]["served_entities"][1]["external_model"]["amazon_bedrock_config"]["bedrock_provider"]
    assert original != original.lower()
    warned = [w for w in result.warnings if w.startswith(path)]
    assert warned == [f"{path}: {original!r} read as {original.lower()!r} (the manifest's spelling); the original is "
                      f"kept in the {convert.EXTRA_ANNOTATION} annotation for the way back"]  # fmt: skip
