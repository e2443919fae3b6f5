"""Official clients, unmodified, against the proxy's discovery and compatibility routes:

- MLflow's deployments client with the MLflow AI Gateway target (``get_deploy_client("http://<proxy>")``);
- MLflow's deployments client with the Databricks target, and the Databricks SDK, reading endpoints;
- the openai client's models API;
and a sentinel check that no read API ever shows a plaintext credential.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
import requests

from tests.standins.openai_api import OpenAIStandIn

from .conftest import FAKE_KEY
from .harness import endpoint, openai_entity, run_proxy

SECRETS = {"openai": {"api-key": FAKE_KEY}}


def _manifests(url: str) -> list[dict[str, Any]]:
    return [
        endpoint("chat", [openai_entity(url)],
                 ai_gateway={"rateLimits": [{"calls": 7, "key": "user", "renewalPeriod": "minute"},
                                            {"calls": 30, "key": "endpoint", "renewalPeriod": "minute"}]}),
        endpoint("complete", [openai_entity(url, model="gpt-3.5-turbo-instruct", task="llm/v1/completions")]),
        endpoint("embed", [openai_entity(url, model="text-embedding-3-small", task="llm/v1/embeddings")]),
    ]


# ------------------------------------------------------------------------------------ MLflow AI Gateway target


def test_mlflow_gateway_target_predict(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    from mlflow.deployments import get_deploy_client

    standin, url = openai_standin
    with run_proxy(tmp_path, _manifests(url), secrets=SECRETS) as proxy:
        client = get_deploy_client(proxy.url)
        assert type(client).__name__ == "MlflowDeploymentClient"  # the gateway target, not Databricks

        answer = client.predict(endpoint="chat", inputs={"messages": [{"role": "user", "content": "Hi there"}],
                                                         "temperature": 0.2, "max_tokens": 9})
        assert answer["object"] == "chat.completion"
        assert answer["choices"][0]["message"]["content"] == "You said: Hi there"
        sent = standin.stats.last
        assert sent["path"] == "/v1/chat/completions"
        assert sent["body"]["model"] == "gpt-4o-mini"
        assert (sent["body"]["temperature"], sent["body"]["max_tokens"]) == (0.2, 9)

        completion = client.predict(endpoint="complete", inputs={"prompt": "Say this is a test", "max_tokens": 7})
        assert completion["choices"][0]["text"] == "This is indeed a test"

        emb = client.predict(endpoint="embed", inputs={"input": ["hello", "abc"]})
        assert [d["embedding"] for d in emb["data"]] == [[5.0, 0.5, -0.25], [3.0, 0.5, -0.25]]


def test_mlflow_gateway_target_errors_in_fastapi_shape(tmp_path: Path,
                                                        openai_standin: tuple[OpenAIStandIn, str]) -> None:
    from mlflow.deployments import get_deploy_client

    _, url = openai_standin
    manifests = [*_manifests(url), endpoint("wrongkey", [openai_entity(url, key="sk-not-the-right-one")])]
    with run_proxy(tmp_path, manifests, secrets=SECRETS) as proxy:
        client = get_deploy_client(proxy.url)
        with pytest.raises(requests.HTTPError) as missing:
            client.predict(endpoint="missing", inputs={"messages": [{"role": "user", "content": "x"}]})
        assert missing.value.response.status_code == 404
        assert missing.value.response.json() == {"detail": "the serving endpoint 'missing' does not exist"}

        with pytest.raises(requests.HTTPError) as wrong_task:
            client.predict(endpoint="chat", inputs={"input": ["not a chat request"]})
        assert wrong_task.value.response.status_code == 400
        assert set(wrong_task.value.response.json()) == {"detail"}

        with pytest.raises(requests.HTTPError) as upstream:
            client.predict(endpoint="wrongkey", inputs={"messages": [{"role": "user", "content": "x"}]})
        assert upstream.value.response.status_code == 401
        assert isinstance(upstream.value.response.json()["detail"], str)
        assert "sk-not-the-right-one" not in upstream.value.response.text

        with pytest.raises(requests.HTTPError) as unknown:
            client.get_endpoint("missing")
        assert unknown.value.response.status_code == 404
        assert "missing" in unknown.value.response.json()["detail"]

        # an unrouted method under the gateway's paths answers in the same shape
        wrong_method = requests.get(proxy.url + "/endpoints/chat/invocations", timeout=10)
        assert wrong_method.status_code == 405
        assert set(wrong_method.json()) == {"detail"}


def test_mlflow_gateway_target_streams(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    """MLflow's gateway client has no ``predict_stream``; the gateway streams on ``stream: true`` (SSE)."""
    _, url = openai_standin
    with run_proxy(tmp_path, _manifests(url), secrets=SECRETS) as proxy:
        for path in ("/endpoints/chat/invocations", "/gateway/chat/invocations"):
            with requests.post(proxy.url + path, stream=True, timeout=10,
                               json={"messages": [{"role": "user", "content": "a b"}], "stream": True}) as r:
                assert r.status_code == 200
                assert r.headers["content-type"].startswith("text/event-stream")
                data = [line[len("data: "):] for line in r.iter_lines(decode_unicode=True) if line]
        assert data[-1] == "[DONE]"
        chunks = [json.loads(d) for d in data[:-1]]
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "You said: a b"


def test_mlflow_gateway_target_get_and_list(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.deployments import get_deploy_client

    from modelgate_proxy.server import mlflow_gateway

    standin, url = openai_standin
    with run_proxy(tmp_path, _manifests(url), secrets=SECRETS) as proxy:
        client = get_deploy_client(proxy.url)
        chat = client.get_endpoint("chat")
        assert chat.name == "chat"
        assert chat.endpoint_type == "llm/v1/chat"
        assert (chat.model.name, chat.model.provider) == ("gpt-4o-mini", "openai")
        assert chat.endpoint_url == proxy.url + "/endpoints/chat/invocations"
        assert chat.limit is not None
        assert (chat.limit.calls, chat.limit.renewal_period) == (30, "minute")  # the endpoint-wide limit
        assert client.get_endpoint("embed").limit is None

        # the advertised URL is the query URL
        r = requests.post(chat.endpoint_url, json={"messages": [{"role": "user", "content": "via url"}]}, timeout=10)
        assert r.json()["choices"][0]["message"]["content"] == "You said: via url"
        assert standin.stats.last["body"]["messages"][-1]["content"] == "via url"

        monkeypatch.setattr(mlflow_gateway, "LIST_PAGE_SIZE", 2)
        listed = client.list_endpoints()  # follows next_page_token to the end
        assert [(e.name, e.endpoint_type) for e in listed] == [
            ("chat", "llm/v1/chat"), ("complete", "llm/v1/completions"), ("embed", "llm/v1/embeddings")]
        first = requests.get(proxy.url + "/api/2.0/endpoints/", timeout=10).json()
        assert [e["name"] for e in first["endpoints"]] == ["chat", "complete"]
        assert json.loads(base64.b64decode(first["next_page_token"])) == {"index": 2}
        last = requests.get(proxy.url + "/api/2.0/endpoints/", params={"page_token": first["next_page_token"]},
                            timeout=10).json()
        assert [e["name"] for e in last["endpoints"]] == ["embed"]
        assert "next_page_token" not in last

        bad = requests.get(proxy.url + "/api/2.0/endpoints/", params={"page_token": "!!not-a-token"}, timeout=10)
        assert bad.status_code == 400
        assert "page_token" in bad.json()["detail"]


# ------------------------------------------------------------------------------------------ Databricks target


def test_databricks_target_get_and_list(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.deployments import get_deploy_client

    _, url = openai_standin
    manifests = [
        endpoint("chat", [openai_entity(url, name="primary"), openai_entity(url, name="backup", model="gpt-4o")],
                 routes=[("primary", 80), ("backup", 20)],
                 ai_gateway={"fallbackConfig": {"enabled": True}}),
        endpoint("broken", [openai_entity(url, key_ref="{{secrets/absent/api-key}}")]),
    ]
    manifests[0]["spec"]["tags"] = [{"key": "team", "value": "search"}]
    with run_proxy(tmp_path, manifests, secrets=SECRETS) as proxy:
        monkeypatch.setenv("DATABRICKS_HOST", proxy.url)
        monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-caller")
        client = get_deploy_client("databricks")

        chat = client.get_endpoint("chat")
        assert chat["name"] == "chat"
        assert chat["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}
        assert chat["task"] == "llm/v1/chat"
        assert chat["endpoint_type"] == "EXTERNAL_MODEL"
        assert chat["tags"] == [{"key": "team", "value": "search"}]
        assert chat["ai_gateway"]["fallback_config"] == {"enabled": True}
        entities = chat["config"]["served_entities"]
        assert [e["name"] for e in entities] == ["primary", "backup"]
        assert entities[0]["external_model"]["openai_config"]["openai_api_key"] == "{{secrets/openai/api-key}}"
        assert entities[1]["external_model"]["name"] == "gpt-4o"
        assert all(e["state"]["deployment"] == "DEPLOYMENT_READY" for e in entities)
        assert chat["config"]["traffic_config"]["routes"] == [
            {"served_entity_name": "primary", "traffic_percentage": 80},
            {"served_entity_name": "backup", "traffic_percentage": 20}]

        broken = client.get_endpoint("broken")
        assert broken["state"]["ready"] == "NOT_READY"
        state = broken["config"]["served_entities"][0]["state"]
        assert state["deployment"] == "DEPLOYMENT_FAILED"
        assert "{{secrets/absent/api-key}}" in state["deployment_state_message"]

        listed = client.list_endpoints()
        assert [e["name"] for e in listed] == ["chat", "broken"]
        assert listed[0]["config"]["served_entities"][0]["external_model"]["provider"] == "openai"

        with pytest.raises(requests.HTTPError, match=r"404.*RESOURCE_DOES_NOT_EXIST"):
            client.get_endpoint("missing")
        with pytest.raises(requests.HTTPError, match=r"501.*NOT_IMPLEMENTED.*kubectl"):
            client.create_endpoint(config={"name": "new", "config": {"served_entities": []}})
        with pytest.raises(requests.HTTPError, match=r"501.*NOT_IMPLEMENTED"):
            client.update_endpoint_config(endpoint="chat", config={"served_entities": []})
        with pytest.raises(requests.HTTPError, match=r"501.*NOT_IMPLEMENTED"):
            client.delete_endpoint("chat")
        assert client.get_endpoint("chat")["name"] == "chat"  # still served


def test_databricks_sdk_reads(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The Databricks SDK parses the answers into its own dataclasses."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.errors import NotFound, NotImplemented
    from databricks.sdk.service.serving import EndpointStateReady, ServedModelStateDeployment

    for var in ("DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"):
        monkeypatch.delenv(var, raising=False)
    _, url = openai_standin
    with run_proxy(tmp_path, _manifests(url), secrets=SECRETS) as proxy:
        w = WorkspaceClient(host=proxy.url, token="dapi-caller", auth_type="pat")
        chat = w.serving_endpoints.get("chat")
        assert chat.name == "chat"
        assert chat.state is not None
        assert chat.state.ready == EndpointStateReady.READY
        assert chat.config is not None
        assert chat.config.served_entities is not None
        entity = chat.config.served_entities[0]
        assert entity.external_model is not None
        assert entity.external_model.openai_config is not None
        assert entity.external_model.openai_config.openai_api_key == "{{secrets/openai/api-key}}"
        assert entity.external_model.openai_config.openai_api_key_plaintext is None
        assert entity.state is not None
        assert entity.state.deployment == ServedModelStateDeployment.DEPLOYMENT_READY
        assert chat.ai_gateway is not None
        assert chat.ai_gateway.rate_limits is not None
        assert [r.calls for r in chat.ai_gateway.rate_limits] == [7, 30]
        assert [e.name for e in w.serving_endpoints.list()] == ["chat", "complete", "embed"]
        with pytest.raises(NotFound):
            w.serving_endpoints.get("missing")
        with pytest.raises(NotImplemented):
            w.serving_endpoints.delete("chat")


# -------------------------------------------------------------------------------------------- OpenAI models


def test_openai_models_list_and_retrieve(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    _, url = openai_standin
    with run_proxy(tmp_path, _manifests(url), secrets=SECRETS) as proxy:
        client = openai.OpenAI(base_url=proxy.base, api_key="caller-token", max_retries=0)
        models = list(client.models.list())
        assert [m.id for m in models] == ["chat", "complete", "embed"]
        assert all(m.object == "model" and m.owned_by == "modelgate" and m.created > 1_600_000_000 for m in models)
        chat = client.models.retrieve("chat")
        assert (chat.id, chat.object) == ("chat", "model")
        with pytest.raises(openai.NotFoundError) as missing:
            client.models.retrieve("missing")
        assert missing.value.code == "model_not_found"
        # the listed id is the model to send
        answer = client.chat.completions.create(model=models[0].id, messages=[{"role": "user", "content": "yo"}])
        assert answer.choices[0].message.content == "You said: yo"


def test_read_apis_follow_require_identity(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    _, url = openai_standin
    auth = ["--identity-header", "X-Forwarded-Email", "--require-identity"]
    with run_proxy(tmp_path, _manifests(url), secrets=SECRETS, auth=auth) as proxy:
        for path, shape_key in (("/serving-endpoints/models", "error"), ("/api/2.0/serving-endpoints/chat", "error_code"),
                                ("/api/2.0/endpoints/", "detail")):
            anonymous = requests.get(proxy.url + path, timeout=10)
            assert anonymous.status_code == 401, path
            assert shape_key in anonymous.json()
            known = requests.get(proxy.url + path, headers={"X-Forwarded-Email": "ana@example.com"}, timeout=10)
            assert known.status_code == 200, path


# -------------------------------------------------------------------------------------------------- sentinel

SENTINELS = {
    "openai": "sk-PLAINTEXT-SENTINEL-openai-9f8e7d",
    "anthropic": "sk-ant-PLAINTEXT-SENTINEL-1a2b3c",
    "aws-id": "AKIAPLAINTEXTSENTINEL",
    "aws-secret": "PLAINTEXT-SENTINEL-aws-secret-4d5e6f",
    "bearer": "PLAINTEXT-SENTINEL-bearer-7a8b9c",
    "header": "PLAINTEXT-SENTINEL-header-0d1e2f",
}


def _plaintext_manifests(url: str) -> list[dict[str, Any]]:
    def entity(name: str, provider: str, config_field: str, config: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "externalModel": {"name": f"model-{name}", "provider": provider, "task": "llm/v1/chat",
                                                config_field: config}}

    return [
        endpoint("inline", [
            openai_entity(url, name="oai", key=SENTINELS["openai"]),
            entity("claude", "anthropic", "anthropicConfig", {"anthropicApiKeyPlaintext": SENTINELS["anthropic"]}),
            entity("bedrock", "amazon-bedrock", "amazonBedrockConfig", {
                "awsRegion": "us-east-1", "bedrockProvider": "anthropic",
                "awsAccessKeyIdPlaintext": SENTINELS["aws-id"], "awsSecretAccessKeyPlaintext": SENTINELS["aws-secret"]}),
            entity("bearer", "custom", "customProviderConfig", {
                "customProviderUrl": url + "/v1", "bearerTokenAuth": {"tokenPlaintext": SENTINELS["bearer"]}}),
            entity("header", "custom", "customProviderConfig", {
                "customProviderUrl": url + "/v1", "apiKeyAuth": {"key": "x-api-key", "valuePlaintext": SENTINELS["header"]}}),
        ], routes=[("oai", 60), ("claude", 10), ("bedrock", 10), ("bearer", 10), ("header", 10)]),
        endpoint("referenced", [openai_entity(url)]),
    ]


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_no_plaintext_credential_in_any_read_answer(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    _, url = openai_standin
    paths = ["/serving-endpoints/models", "/serving-endpoints/models/inline", "/api/2.0/serving-endpoints",
             "/api/2.0/serving-endpoints/", "/api/2.0/serving-endpoints/inline", "/api/2.0/serving-endpoints/referenced",
             "/api/2.0/endpoints/", "/api/2.0/endpoints/inline", "/api/2.0/endpoints/referenced"]
    with run_proxy(tmp_path, _plaintext_manifests(url), secrets=SECRETS) as proxy:
        bodies = {}
        for path in paths:
            r = requests.get(proxy.url + path, timeout=10)
            assert r.status_code == 200, (path, r.text)
            bodies[path] = r.content
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            r = requests.request(method, proxy.url + "/api/2.0/serving-endpoints/inline/config", json={}, timeout=10)
            assert r.status_code == 501
            bodies[f"{method} config"] = r.content
        for where, body in bodies.items():
            for label, secret in SENTINELS.items():
                assert secret.encode() not in body, f"{label} credential leaked by {where}"
            assert FAKE_KEY.encode() not in body, where
            assert not {k for k in _keys(orjson.loads(body)) if k.lower().endswith("plaintext")}, where
        detailed = orjson.loads(bodies["/api/2.0/serving-endpoints/inline"])
        models = {e["name"]: e["external_model"] for e in detailed["config"]["served_entities"]}
        assert models["bedrock"]["amazon_bedrock_config"] == {"aws_region": "us-east-1", "bedrock_provider": "anthropic"}
        assert models["header"]["custom_provider_config"]["api_key_auth"] == {"key": "x-api-key"}
        referenced = orjson.loads(bodies["/api/2.0/serving-endpoints/referenced"])
        openai_config = referenced["config"]["served_entities"][0]["external_model"]["openai_config"]
        assert openai_config["openai_api_key"] == "{{secrets/openai/api-key}}"  # references are kept
