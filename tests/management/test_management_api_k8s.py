"""The Databricks management API of the workspace gateway against the real kube-apiserver, driven by MLflow's
Databricks deployments client, unmodified but for DATABRICKS_HOST and DATABRICKS_TOKEN: the seed's
create_endpoint examples (tests/spec/databricks/), then update_endpoint_ai_gateway, update_endpoint_tags,
update_endpoint_rate_limits, update_endpoint_config and delete_endpoint; every resulting ServingEndpoint is read
back from the API server with kubectl. Callers authenticate with API keys; RBAC (SubjectAccessReview) decides."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from modelgate_dev.devcluster import DevCluster
from modelgate_proxy.cli.serve import add_serve_parser, uvicorn_config
from modelgate_proxy.stages.identity.apikey_mint import mint
from tests.identity.test_kube_reviews import _proxy_api, await_rbac
from tests.standins.anthropic_api import API_KEY as ANTHROPIC_KEY
from tests.standins.anthropic_api import REPLY as ANTHROPIC_REPLY
from tests.standins.anthropic_api import make_app as anthropic_app
from tests.standins.server import serve_app

SEEDS = Path(__file__).resolve().parents[1] / "spec" / "databricks"
FILES = Path(__file__).resolve().parents[2] / "charts" / "modelgate" / "files"
SECRET_READER = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: secret-reader}
rules:
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
"""
SERVED = {"apiVersion": "serving.modelgate.io/v1alpha1", "kind": "ServingEndpoint", "metadata": {"name": "served"},
          "spec": {"servedEntities": [{"name": "a", "externalModel": {
              "name": "gpt-4o-mini", "provider": "openai", "task": "llm/v1/chat",
              "openaiConfig": {"openaiApiKey": "{{secrets/openai/api-key}}"}}}]}}


def _apply(k8s: DevCluster, namespace: str, text: str, path: Path) -> None:
    path.write_text(text)
    k8s.kubectl("apply", "-n", namespace, "-f", str(path))


def _object(k8s: DevCluster, namespace: str, kind: str, name: str) -> dict[str, Any]:
    out = k8s.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout
    data: dict[str, Any] = json.loads(out)
    return data


GATEWAY_BASE_ROLE = "modelgate-gateway-files-test"


@pytest.fixture
def gateway(k8s: DevCluster, namespace: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A gateway (``modelgate serve --auth-config ... --management-namespace``) whose ServiceAccount may manage
    the namespace's endpoints; alice may manage them (modelgate-manage), carol's group may view them
    (modelgate-view), bob may do nothing. Yields the URL and the API keys."""
    asyncio.run(_proxy_api(k8s, namespace, tmp_path).close())  # the gateway's SA, SAR rights, tmp_path/"token"
    for role in ("manage", "view"):  # the shipped ClusterRoles
        k8s.kubectl("apply", "-f", str(FILES / f"modelgate-{role}-clusterrole.yaml"))
    # the gateway's shipped rules without the permissions API's, under a name of their own: the session's
    # `modelgate-gateway` (tests/operator/harness.py, with those rights) is shared by the operator tests
    base = yaml.safe_load((FILES / "modelgate-gateway-clusterrole.yaml").read_text())
    base["metadata"]["name"] = GATEWAY_BASE_ROLE
    k8s.kubectl("apply", "-f", "-", input=yaml.safe_dump(base))
    _apply(k8s, namespace, SECRET_READER, tmp_path / "secret-reader.yaml")
    k8s.kubectl("create", "rolebinding", "gateway", f"--clusterrole={GATEWAY_BASE_ROLE}",
                f"--serviceaccount={namespace}:modelgate-proxy", "-n", namespace)
    k8s.kubectl("create", "rolebinding", "alice", "--clusterrole=modelgate-manage", "--user=alice@example.com",
                "-n", namespace)
    k8s.kubectl("create", "rolebinding", "alice-secrets", "--role=secret-reader", "--user=alice@example.com",
                "-n", namespace)
    await_rbac(k8s, namespace, "create", "servingendpoints.serving.modelgate.io")
    await_rbac(k8s, namespace, "create", "servingendpoints.serving.modelgate.io", user="alice@example.com")
    keys = tmp_path / "keys"
    keys.mkdir()
    k8s.kubectl("create", "rolebinding", "viewers", "--clusterrole=modelgate-view", "--group=viewers", "-n", namespace)
    await_rbac(k8s, namespace, "list", "servingendpoints.serving.modelgate.io", user="x", group="viewers")
    alice, bob, carol = mint("alice@example.com"), mint("bob@example.com"), mint("carol@example.com", groups=["viewers"])
    for name, minted in (("alice", alice), ("bob", bob), ("carol", carol)):
        (keys / f"{name}.yaml").write_text(yaml.safe_dump(minted.manifest))
    ca = str(k8s.dir / "pki" / "ca.crt")
    auth = {"mode": "bearer", "authorize": "rbac", "api_keys": {"path": str(keys)},
            "kubernetes": {"server": k8s.server, "token_file": str(tmp_path / "token"), "ca_file": ca},
            "cache": {"ttl": 1, "negative_ttl": 0.2}}
    (tmp_path / "auth.yaml").write_text(yaml.safe_dump(auth))
    (tmp_path / "served.yaml").write_text(yaml.safe_dump(SERVED))
    scope = tmp_path / "secrets" / "my-anthropic-secret-scope"  # as the gateway's pod would mount the Secret
    scope.mkdir(parents=True)
    (scope / "anthropic_api_key").write_text(ANTHROPIC_KEY)
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers())
    args = parser.parse_args(["serve", "-f", str(tmp_path / "served.yaml"), "--auth-config", str(tmp_path / "auth.yaml"),
                              "--management-namespace", namespace, "--management-server", k8s.server,
                              "--management-token-file", str(tmp_path / "token"), "--management-ca-file", ca,
                              "--secrets-dir", str(tmp_path / "secrets"), "--management-refuse-gitops"])
    app = uvicorn_config(args).app
    with serve_app(app) as url, serve_app(anthropic_app()) as anthropic_url:
        yield {"app": app, "url": url, "alice": alice.key, "bob": bob.key, "carol": carol.key, "anthropic": anthropic_url}


def _client(monkeypatch: pytest.MonkeyPatch, url: str, token: str) -> Any:
    from mlflow.deployments import get_deploy_client

    monkeypatch.setenv("DATABRICKS_HOST", url)
    monkeypatch.setenv("DATABRICKS_TOKEN", token)
    return get_deploy_client("databricks")


def _until(check: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _seed(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((SEEDS / f"{name}.json").read_text())
    return body


def test_the_seed_examples_through_mlflows_client(
    k8s: DevCluster, namespace: str, gateway: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = _client(monkeypatch, gateway["url"], gateway["alice"])
    gateway_app = gateway["app"]
    anthropic = _seed("anthropic-completions")
    with caplog.at_level(logging.DEBUG):
        # The Databricks docs' form: name= and a bare config= (MLflow's legacy arguments).
        created = client.create_endpoint(name=anthropic["name"], config=anthropic["config"])
        for seed in ("azure-openai-chat", "bedrock-access-keys", "custom-bearer", "custom-api-key"):
            client.create_endpoint(config=_seed(seed))
    assert created["name"] == "anthropic-completions-endpoint"
    assert created["creator"] == "alice@example.com"
    assert created["permission_level"] == "CAN_MANAGE"
    assert created["state"]["config_update"] == "IN_PROGRESS"  # no operator here: never reconciled
    pending = created["pending_config"]
    assert pending["config_version"] == 1
    key = pending["served_entities"][0]["external_model"]["anthropic_config"]["anthropic_api_key"]
    assert key == "{{secrets/my_anthropic_secret_scope/anthropic_api_key}}"  # the original scope name

    stored = _object(k8s, namespace, "servingendpoint", "anthropic-completions-endpoint")
    config = stored["spec"]["servedEntities"][0]["externalModel"]
    assert config["provider"] == "anthropic"
    assert config["anthropicConfig"]["anthropicApiKey"] == "{{secrets/my-anthropic-secret-scope/anthropic_api_key}}"
    assert created["id"] == stored["metadata"]["uid"].replace("-", "")
    azure = _object(k8s, namespace, "servingendpoint", "openai-chat-endpoint")["spec"]["servedEntities"][0]
    assert azure["externalModel"]["openaiConfig"]["openaiApiType"] == "azure"
    assert azure["externalModel"]["openaiConfig"]["openaiDeploymentName"] == "my-gpt-35-turbo-deployment"
    bedrock = _object(k8s, namespace, "servingendpoint", "bedrock-anthropic-completions-endpoint")
    assert bedrock["spec"]["servedEntities"][0]["externalModel"]["amazonBedrockConfig"]["awsRegion"] == "us-east-1"
    bearer = _object(k8s, namespace, "servingendpoint", "custom-provider-chat-endpoint")
    custom = bearer["spec"]["servedEntities"][0]["externalModel"]["customProviderConfig"]
    assert custom["bearerTokenAuth"]["token"] == "{{secrets/my-custom-provider-secret-scope/custom_provider_token}}"
    api_key = _object(k8s, namespace, "servingendpoint", "custom-provider-api-key-endpoint")
    assert api_key["spec"]["servedEntities"][0]["externalModel"]["customProviderConfig"]["apiKeyAuth"]["key"] == "X-API-KEY"

    listed = {e["name"] for e in client.list_endpoints()}
    assert listed == {"anthropic-completions-endpoint", "openai-chat-endpoint", "bedrock-anthropic-completions-endpoint",
                      "custom-provider-chat-endpoint", "custom-provider-api-key-endpoint"}
    got = client.get_endpoint("openai-chat-endpoint")
    assert got["pending_config"]["served_entities"][0]["external_model"]["openai_config"]["openai_api_key"] == (
        "{{secrets/my_openai_secret_scope/openai_api_key}}")

    limits = [{"calls": 10, "key": "user", "renewal_period": "minute"}]
    answer = client.update_endpoint_ai_gateway("anthropic-completions-endpoint", {
        "usage_tracking_config": {"enabled": True}, "rate_limits": limits})
    assert answer["rate_limits"] == limits
    stored = _object(k8s, namespace, "servingendpoint", "anthropic-completions-endpoint")
    assert stored["spec"]["aiGateway"]["rateLimits"] == [{"calls": 10, "key": "user", "renewalPeriod": "minute"}]
    assert stored["spec"]["aiGateway"]["usageTrackingConfig"] == {"enabled": True}
    assert stored["metadata"]["generation"] == 2

    tags = client.update_endpoint_tags("anthropic-completions-endpoint", {
        "add_tags": [{"key": "team", "value": "ml"}, {"key": "tmp", "value": "x"}]})
    assert {t["key"] for t in tags["tags"]} == {"team", "tmp"}
    tags = client.update_endpoint_tags("anthropic-completions-endpoint", {"delete_tags": ["tmp"]})
    assert tags["tags"] == [{"key": "team", "value": "ml"}]
    stored = _object(k8s, namespace, "servingendpoint", "anthropic-completions-endpoint")
    assert stored["spec"]["tags"] == [{"key": "team", "value": "ml"}]
    assert stored["spec"]["aiGateway"]["usageTrackingConfig"] == {"enabled": True}  # kept by the tag update

    legacy = client.update_endpoint_rate_limits("custom-provider-chat-endpoint", {
        "rate_limits": [{"calls": 5, "key": "endpoint", "renewal_period": "minute"}]})
    assert legacy["rate_limits"] == [{"calls": 5, "key": "endpoint", "renewal_period": "minute"}]
    stored = _object(k8s, namespace, "servingendpoint", "custom-provider-chat-endpoint")
    assert stored["spec"]["aiGateway"]["rateLimits"] == [{"calls": 5, "key": "endpoint", "renewalPeriod": "minute"}]

    # The gateway serves what was created: the OpenAI client, base_url = the workspace URL, model = the endpoint.
    import openai

    anthropic_config = _seed("anthropic-completions")["config"]
    anthropic_config["served_entities"][0]["external_model"]["anthropic_config"]["anthropic_api_base"] = (
        gateway["anthropic"])  # the stand-in (a modelgate extension field; Databricks calls api.anthropic.com)
    client.update_endpoint_config("anthropic-completions-endpoint", anthropic_config)
    served = gateway_app.state.gateway.endpoints
    # Never query before the watch has applied the stand-in's URL: the created config would call the real API.
    _until(lambda: getattr(getattr(served.get("anthropic-completions-endpoint"), "spec", None), "served_entities",
                           None) is not None and served["anthropic-completions-endpoint"].spec.served_entities[0]
           .external_model.anthropic_config.anthropic_api_base is not None, "the watch never served the update")
    oai = openai.OpenAI(base_url=gateway["url"] + "/serving-endpoints", api_key=gateway["alice"], max_retries=0)
    completion = oai.completions.create(model="anthropic-completions-endpoint", prompt="Hello", max_tokens=20)
    assert completion.choices[0].text == ANTHROPIC_REPLY
    ready = requests.get(gateway["url"] + "/readyz", timeout=10)  # the seeds' other Secrets are not mounted here
    assert ready.status_code == 200
    assert any("openai-chat-endpoint" in w for w in ready.json()["warnings"])
    denied = openai.OpenAI(base_url=gateway["url"] + "/serving-endpoints", api_key=gateway["bob"], max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        denied.completions.create(model="anthropic-completions-endpoint", prompt="Hello", max_tokens=20)

    new_config = _seed("custom-api-key")["config"]
    new_config["served_entities"][0]["external_model"]["name"] = "custom-provider-model-v2"
    updated = client.update_endpoint_config("custom-provider-api-key-endpoint", new_config)
    assert updated["pending_config"]["config_version"] == 2
    stored = _object(k8s, namespace, "servingendpoint", "custom-provider-api-key-endpoint")
    assert stored["spec"]["servedEntities"][0]["externalModel"]["name"] == "custom-provider-model-v2"

    client.delete_endpoint("anthropic-completions-endpoint")
    _until(lambda: "anthropic-completions-endpoint" not in served, "the gateway kept serving a deleted endpoint")
    with pytest.raises(openai.NotFoundError):
        oai.completions.create(model="anthropic-completions-endpoint", prompt="Hello", max_tokens=20)
    client.delete_endpoint("bedrock-anthropic-completions-endpoint")
    gone = k8s.kubectl("get", "servingendpoint", "bedrock-anthropic-completions-endpoint", "-n", namespace,
                       check=False)
    assert gone.returncode != 0
    assert "NotFound" in gone.stderr
    with pytest.raises(requests.HTTPError, match=r"404.*RESOURCE_DOES_NOT_EXIST"):
        client.get_endpoint("bedrock-anthropic-completions-endpoint")
    with pytest.raises(requests.HTTPError, match=r"RESOURCE_ALREADY_EXISTS"):  # MLflow reports it as a 400
        client.create_endpoint(config=_seed("azure-openai-chat"))
    again = requests.post(gateway["url"] + "/api/2.0/serving-endpoints", json=_seed("azure-openai-chat"),
                          headers={"Authorization": f"Bearer {gateway['alice']}"}, timeout=10)
    assert (again.status_code, again.json()["error_code"]) == (409, "RESOURCE_ALREADY_EXISTS")
    raw = requests.get(gateway["url"] + "/api/2.0/serving-endpoints/custom-provider-api-key-endpoint",
                       headers={"Authorization": f"Bearer {gateway['alice']}"}, timeout=10).json()
    auth = raw["pending_config"]["served_entities"][0]["external_model"]["custom_provider_config"]["api_key_auth"]
    assert auth == {"key": "X-API-KEY", "value": "{{secrets/my_custom_provider_secret_scope/custom_provider_api_key}}"}
    assert raw["pending_config"]["config_version"] == 2
    assert gateway["alice"] not in caplog.text


def test_plaintext_credentials_move_into_a_secret_the_endpoint_owns(
    k8s: DevCluster, namespace: str, gateway: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = _client(monkeypatch, gateway["url"], gateway["alice"])
    body = _seed("custom-bearer")
    body["config"]["served_entities"][0]["external_model"]["custom_provider_config"]["bearer_token_auth"] = {
        "token_plaintext": "sk-plain-0123456789"}
    created = client.create_endpoint(config=body)
    assert "sk-plain-0123456789" not in json.dumps(created)
    stored = _object(k8s, namespace, "servingendpoint", "custom-provider-chat-endpoint")
    assert "sk-plain-0123456789" not in json.dumps(stored)
    token = stored["spec"]["servedEntities"][0]["externalModel"]["customProviderConfig"]["bearerTokenAuth"]["token"]
    assert token.startswith("{{secrets/modelgate-plaintext-custom-provider-chat-endpoint-")
    secret_name, data_key = token.removeprefix("{{secrets/").removesuffix("}}").split("/")
    secret = _object(k8s, namespace, "secret", secret_name)
    import base64

    assert base64.b64decode(secret["data"][data_key]).decode() == "sk-plain-0123456789"
    owner = secret["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "ServingEndpoint", "custom-provider-chat-endpoint", stored["metadata"]["uid"])
    # A tag update keeps the reference (no new Secret); a new plaintext key makes a new Secret, never a change.
    client.update_endpoint_tags("custom-provider-chat-endpoint", {"add_tags": [{"key": "a", "value": "b"}]})
    spec = _object(k8s, namespace, "servingendpoint", "custom-provider-chat-endpoint")["spec"]
    assert spec["servedEntities"][0]["externalModel"]["customProviderConfig"]["bearerTokenAuth"]["token"] == token
    config = body["config"]
    config["served_entities"][0]["external_model"]["custom_provider_config"]["bearer_token_auth"] = {
        "token_plaintext": "sk-plain-rotated-987"}
    client.update_endpoint_config("custom-provider-chat-endpoint", config)
    spec = _object(k8s, namespace, "servingendpoint", "custom-provider-chat-endpoint")["spec"]
    rotated = spec["servedEntities"][0]["externalModel"]["customProviderConfig"]["bearerTokenAuth"]["token"]
    assert rotated != token
    new_name, new_key = rotated.removeprefix("{{secrets/").removesuffix("}}").split("/")
    assert base64.b64decode(_object(k8s, namespace, "secret", new_name)["data"][new_key]).decode() == (
        "sk-plain-rotated-987")
    assert base64.b64decode(_object(k8s, namespace, "secret", secret_name)["data"][data_key]).decode() == (
        "sk-plain-0123456789")  # the first Secret was not changed


def test_rbac_and_bad_bodies_answer_in_databricks_shape(
    k8s: DevCluster, namespace: str, gateway: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice = _client(monkeypatch, gateway["url"], gateway["alice"])
    alice.create_endpoint(config=_seed("anthropic-completions"))
    bob = _client(monkeypatch, gateway["url"], gateway["bob"])
    with pytest.raises(requests.HTTPError, match=r"403.*PERMISSION_DENIED") as denied:
        bob.create_endpoint(config=_seed("azure-openai-chat"))
    assert "bob@example.com" in str(denied.value)
    assert "'create'" in str(denied.value)
    with pytest.raises(requests.HTTPError, match=r"403.*PERMISSION_DENIED"):
        bob.delete_endpoint("anthropic-completions-endpoint")
    with pytest.raises(requests.HTTPError, match=r"403.*PERMISSION_DENIED"):
        bob.list_endpoints()
    assert _object(k8s, namespace, "servingendpoint", "anthropic-completions-endpoint")["metadata"]["name"]
    gone = k8s.kubectl("get", "servingendpoint", "openai-chat-endpoint", "-n", namespace, check=False)
    assert gone.returncode != 0

    url = gateway["url"] + "/api/2.0/serving-endpoints"
    auth = {"Authorization": f"Bearer {gateway['alice']}"}
    bad = _seed("azure-openai-chat")
    bad["config"]["served_entities"][0]["external_model"]["task"] = "llm/v1/dance"
    resp = requests.post(url, json=bad, headers=auth, timeout=10)
    assert resp.status_code == 400
    assert resp.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "config.served_entities[0].external_model.task" in resp.json()["message"]
    missing = requests.post(url, json={"name": "x", "config": {}}, headers=auth, timeout=10)
    assert (missing.status_code, missing.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "config.served_entities" in missing.json()["message"]
    not_json = requests.post(url, data=b"{", headers=auth, timeout=10)
    assert not_json.status_code == 400
    anonymous = requests.get(url, timeout=10)
    assert anonymous.status_code == 401
    # A caller who may create endpoints but not read a Secret cannot make the gateway use it.
    k8s.kubectl("create", "role", "creator-only", "--verb=create", "--resource=servingendpoints.serving.modelgate.io",
                "-n", namespace)
    k8s.kubectl("create", "rolebinding", "bob-create", "--role=creator-only", "--user=bob@example.com", "-n", namespace)
    await_rbac(k8s, namespace, "create", "servingendpoints.serving.modelgate.io", user="bob@example.com")
    with pytest.raises(requests.HTTPError, match=r"403.*PERMISSION_DENIED") as secret_denied:
        bob.create_endpoint(config=_seed("azure-openai-chat"))
    assert "my-openai-secret-scope" in str(secret_denied.value)
    gone = k8s.kubectl("get", "servingendpoint", "openai-chat-endpoint", "-n", namespace, check=False)
    assert gone.returncode != 0

    # An endpoint a GitOps tool manages is changed in Git, not here (--management-refuse-gitops).
    alice = _client(monkeypatch, gateway["url"], gateway["alice"])
    k8s.kubectl("label", "servingendpoint", "anthropic-completions-endpoint", "app.kubernetes.io/instance=ml-apps",
                "-n", namespace)
    with pytest.raises(requests.HTTPError, match=r"INVALID_STATE.*managed by GitOps \(label app.kubernetes.io/instance"):
        alice.update_endpoint_tags("anthropic-completions-endpoint", {"add_tags": [{"key": "a", "value": "b"}]})
    with pytest.raises(requests.HTTPError, match=r"INVALID_STATE"):
        alice.delete_endpoint("anthropic-completions-endpoint")
    assert "tags" not in _object(k8s, namespace, "servingendpoint", "anthropic-completions-endpoint")["spec"]

    # The client reads DATABRICKS_TOKEN at each call: carol last.
    carol = _client(monkeypatch, gateway["url"], gateway["carol"])
    assert carol.get_endpoint("anthropic-completions-endpoint")["permission_level"] == "CAN_VIEW"
    assert [e["name"] for e in carol.list_endpoints()] == ["anthropic-completions-endpoint"]
    with pytest.raises(requests.HTTPError, match=r"403.*PERMISSION_DENIED"):
        carol.delete_endpoint("anthropic-completions-endpoint")
    with pytest.raises(requests.HTTPError, match=r"403.*PERMISSION_DENIED"):
        carol.update_endpoint_tags("anthropic-completions-endpoint", {"add_tags": [{"key": "a", "value": "b"}]})
