"""The management API's pure parts: Databricks bodies -> objects (plaintext credentials out, fields named in
errors), objects -> Databricks' read shape (rollouts, states), and the serve options that turn it on."""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelgate_proxy.cli.manifests import ConfigError
from modelgate_proxy.cli.serve import add_serve_parser, uvicorn_config
from modelgate_proxy.errors import BadRequest
from modelgate_proxy.server.management.bodies import merged, prepare
from modelgate_proxy.server.management.routes import gitops_marker
from modelgate_proxy.server.management.views import detailed

SEEDS = Path(__file__).resolve().parents[1] / "spec" / "databricks"


def _seed(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((SEEDS / f"{name}.json").read_text())
    return body


def test_plaintext_keys_leave_the_manifest_for_the_owned_secret() -> None:
    body = _seed("bedrock-access-keys")
    config = body["config"]["served_entities"][0]["external_model"]["amazon_bedrock_config"]
    del config["aws_access_key_id"], config["aws_secret_access_key"]
    config["aws_access_key_id_plaintext"], config["aws_secret_access_key_plaintext"] = "AKIAEXAMPLE", "s3cr3t-value"
    prepared = prepare(body, "team-a")
    assert "s3cr3t-value" not in json.dumps(prepared.manifest)
    assert "AKIAEXAMPLE" not in json.dumps(prepared.manifest)
    assert sorted(prepared.plaintext.values()) == ["AKIAEXAMPLE", "s3cr3t-value"]
    bedrock = prepared.manifest["spec"]["servedEntities"][0]["externalModel"]["amazonBedrockConfig"]
    ref = bedrock["awsSecretAccessKey"]
    assert ref.startswith("{{secrets/modelgate-plaintext-bedrock-anthropic-completions-endpoint-")
    assert ref.split("/")[1] == prepared.secret
    assert prepared.plaintext[ref.split("/")[2].rstrip("}")] == "s3cr3t-value"
    assert prepared.references == []  # the owned Secret needs no read right of the caller
    assert prepared.manifest["metadata"]["namespace"] == "team-a"


def test_a_secret_field_and_its_plaintext_twin_together_are_refused() -> None:
    body = _seed("anthropic-completions")
    body["config"]["served_entities"][0]["external_model"]["anthropic_config"]["anthropic_api_key_plaintext"] = "k"
    with pytest.raises(BadRequest) as err:
        prepare(body, "team-a")
    assert "anthropic" in err.value.message.lower()
    assert err.value.status == 400


@pytest.mark.parametrize(("body", "field"), [
    ([], "JSON object"),
    ({"config": {"served_entities": []}}, "name"),
    ({"name": "x", "config": {}}, "config.served_entities"),
    ({"name": "x", "config": {"served_entities": [{"external_model": {"name": "m", "provider": "openai",
                                                                      "task": "llm/v1/chat", "openai_config": 3}}]}},
     "config.served_entities[0].external_model.openai_config"),
])
def test_bad_bodies_name_the_field(body: Any, field: str) -> None:
    with pytest.raises(BadRequest) as err:
        prepare(body, "team-a")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert field in err.value.message


def _stored(generation: int, observed: int | None) -> dict[str, Any]:
    obj = copy.deepcopy(prepare(_seed("azure-openai-chat"), "team-a").manifest)
    obj["metadata"].update({"uid": "1b2c-3d", "generation": generation, "creationTimestamp": "2026-01-02T03:04:05Z",
                            "managedFields": [{"time": "2026-01-02T03:05:00Z"}],
                            "annotations": {**obj["metadata"].get("annotations", {}),
                                            "serving.modelgate.io/creator": "alice@example.com"}})
    if observed is not None:
        obj["status"] = {"observedGeneration": observed, "state": {"ready": "READY", "configUpdate": "NOT_UPDATING"},
                         "endpointUrl": "http://modelgate-openai-chat-endpoint.team-a.svc",
                         "servedEntities": [{"name": "openai-chat", "provider": "openai", "model": "gpt-35-turbo",
                                             "state": {"deployment": "DEPLOYMENT_READY",
                                                       "deploymentStateMessage": ""}}]}
    return obj


def test_a_reconciled_endpoint_reads_back_in_databricks_shape() -> None:
    view = detailed(_stored(3, 3), "CAN_QUERY")
    assert view["id"] == "1b2c3d"
    assert view["creator"] == "alice@example.com"
    assert view["creation_timestamp"] == 1767323045000
    assert view["last_updated_timestamp"] == 1767323100000
    assert view["config"]["config_version"] == 3
    assert "pending_config" not in view
    entity = view["config"]["served_entities"][0]
    assert entity["state"] == {"deployment": "DEPLOYMENT_READY", "deployment_state_message": ""}
    assert view["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}
    assert entity["external_model"]["openai_config"]["openai_api_key"] == "{{secrets/my_openai_secret_scope/openai_api_key}}"
    assert view["permission_level"] == "CAN_QUERY"
    assert view["endpoint_url"] == "http://modelgate-openai-chat-endpoint.team-a.svc"
    assert view["route_optimized"] is False


def test_a_rollout_shows_the_pending_config_and_what_is_served() -> None:
    view = detailed(_stored(4, 3), None)
    assert view["state"]["config_update"] == "IN_PROGRESS"
    assert view["pending_config"]["config_version"] == 4
    assert view["config"] == {"config_version": 3, "served_entities": [
        {"name": "openai-chat", "external_model": {"provider": "openai", "name": "gpt-35-turbo"},
         "state": {"deployment": "DEPLOYMENT_READY", "deployment_state_message": ""}}]}
    assert "permission_level" not in view


def test_an_update_keeps_foreign_labels_and_annotations() -> None:
    stored = _stored(1, 1)
    stored["metadata"]["labels"] = {"team": "ml"}
    stored["metadata"]["annotations"]["example.com/owner"] = "ml-platform"
    body = _seed("azure-openai-chat")
    body["tags"] = [{"key": "a", "value": "b"}]
    out = merged(stored, prepare(body, "team-a"))
    assert out["metadata"]["labels"] == {"team": "ml"}
    assert out["metadata"]["annotations"]["example.com/owner"] == "ml-platform"
    assert out["spec"]["tags"] == [{"key": "a", "value": "b"}]
    assert out["metadata"]["uid"] == "1b2c-3d"


def _args(tmp_path: Path, *extra: str, auth: bool = True) -> argparse.Namespace:
    manifest = {"apiVersion": "serving.modelgate.io/v1alpha1", "kind": "ServingEndpoint", "metadata": {"name": "e"},
                "spec": {"servedEntities": [{"name": "a", "externalModel": {
                    "name": "m", "provider": "openai", "task": "llm/v1/chat",
                    "openaiConfig": {"openaiApiKeyPlaintext": "k"}}}]}}
    (tmp_path / "e.yaml").write_text(yaml.safe_dump(manifest))
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers())
    choice: list[str] = []
    if auth:  # an explicit authentication choice, as serve will require of every process
        (tmp_path / "keys").mkdir(exist_ok=True)
        (tmp_path / "auth.yaml").write_text(yaml.safe_dump({"mode": "bearer", "authorize": "authenticated",
                                                            "api_keys": {"path": str(tmp_path / "keys")}}))
        choice = ["--auth-config", str(tmp_path / "auth.yaml")]
    return parser.parse_args(["serve", "-f", str(tmp_path / "e.yaml"), *choice, *extra])


def test_the_management_api_is_off_by_default_and_needs_authentication(tmp_path: Path) -> None:
    routes = {getattr(r, "path", "") + str(sorted(getattr(r, "methods", None) or []))
              for r in uvicorn_config(_args(tmp_path)).app.routes}  # type: ignore[union-attr]
    assert "/api/2.0/serving-endpoints/{name}/config['PUT']" not in routes
    with pytest.raises(ConfigError, match="auth"):  # needs authentication (or, auth on by default: a choice)
        uvicorn_config(_args(tmp_path, "--management-namespace", "team-a", auth=False))
    with pytest.raises(ConfigError, match="not a Kubernetes namespace"):
        uvicorn_config(_args(tmp_path, "--management-namespace", "Team_A"))


def test_a_gateway_needs_no_files_but_a_proxy_does(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers())
    with pytest.raises(ConfigError, match="no endpoints to serve"):
        uvicorn_config(parser.parse_args(["serve", "--no-auth"]))
    auth = tmp_path / "auth.yaml"
    auth.write_text(yaml.safe_dump({"mode": "bearer", "authorize": "rbac", "kubernetes": {
        "server": "https://127.0.0.1:1", "token_file": str(tmp_path / "t"), "ca_file": str(tmp_path / "ca")},
        "api_keys": {"path": str(tmp_path)}}))
    app = uvicorn_config(parser.parse_args(["serve", "--auth-config", str(auth), "--management-namespace", "team-a",
                                            "--management-server", "https://127.0.0.1:1"])).app
    assert app.state.gateway.endpoints == {}  # type: ignore[union-attr]


@pytest.mark.parametrize(("metadata", "marker"), [
    ({"labels": {"team": "ml"}, "annotations": {"note": "x"}}, None),
    ({"annotations": {"argocd.argoproj.io/tracking-id": "apps:serving.modelgate.io/ServingEndpoint:ns/e"}},
     "annotation argocd.argoproj.io/tracking-id"),
    ({"labels": {"kustomize.toolkit.fluxcd.io/name": "apps"}}, "label kustomize.toolkit.fluxcd.io/name"),
    ({"labels": {"serving.modelgate.io/managed-by-gitops": "true"}}, "label serving.modelgate.io/managed-by-gitops"),
])
def test_gitops_markers(metadata: dict[str, Any], marker: str | None) -> None:
    assert gitops_marker({"metadata": {"name": "e", **metadata}}) == marker
