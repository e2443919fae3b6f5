"""``modelgate serve`` configured as the operator renders it in a pod: an ``--auth-config`` with
``api_key_secrets`` (the watched API-key Secrets of the endpoint's namespace), ``kubernetes.audience`` (TokenReview)
and ``authorize: rbac`` (SubjectAccessReview), the API server from ``KUBERNETES_SERVICE_HOST``/``PORT``, against
the real kube-apiserver. The read APIs show a principal only the endpoints it may query: the Databricks SDK's list
and get, OpenAI's models, the MLflow gateway's endpoints."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import openai
import pytest
import yaml

from modelgate_dev.devcluster import DevCluster
from modelgate_proxy.stages.identity.apikey_mint import mint
from tests.identity.test_kube_reviews import AUDIENCE, FILES, _caller_token, _proxy_api, await_rbac
from tests.standins.openai_api import OpenAIStandIn

from .conftest import FAKE_KEY
from .harness import endpoint, openai_entity
from .serve_process import serve_process

SECRETS = {"openai": {"api-key": FAKE_KEY}}
CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def _in(namespace: str, manifest: dict[str, object]) -> dict[str, object]:
    manifest["metadata"] = {**manifest["metadata"], "namespace": namespace}  # type: ignore[dict-item]
    return manifest


def test_reads_are_filtered_by_query_permission_with_watched_key_secrets_and_rbac(
    k8s: DevCluster, namespace: str, tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.errors import PermissionDenied
    from databricks.sdk.service.serving import ChatMessage, ChatMessageRole

    _, url = openai_standin
    api = _proxy_api(k8s, namespace, tmp_path)  # the proxy's ServiceAccount, bound to the reviews, its token file
    del api
    k8s.kubectl("create", "role", "api-key-secrets", "--verb=get,list,watch", "--resource=secrets", "-n", namespace)
    k8s.kubectl("create", "rolebinding", "proxy-secrets", "--role=api-key-secrets",
                f"--serviceaccount={namespace}:modelgate-proxy", "-n", namespace)
    k8s.kubectl("apply", "-f", str(FILES / "modelgate-query-clusterrole.yaml"))
    k8s.kubectl("create", "role", "query-chat", "--verb=query", "--resource=servingendpoints.serving.modelgate.io",
                "--resource-name=chat", "-n", namespace)
    k8s.kubectl("create", "rolebinding", "erin-chat", "--role=query-chat", "--user=erin@example.com", "-n", namespace)
    k8s.kubectl("create", "serviceaccount", "batch", "-n", namespace)
    k8s.kubectl("create", "rolebinding", "batch-all", "--clusterrole=modelgate-query",
                f"--serviceaccount={namespace}:batch", "-n", namespace)
    await_rbac(k8s, namespace, "watch", "secrets")
    await_rbac(k8s, namespace, "query", "servingendpoints.serving.modelgate.io/chat", user="erin@example.com")
    await_rbac(k8s, namespace, "query", "servingendpoints.serving.modelgate.io/private", "batch")
    erin, frank = mint("erin@example.com", namespace=namespace), mint("frank@example.com", namespace=namespace)
    for minted in (erin, frank):
        k8s.kubectl("apply", "-f", "-", input=yaml.safe_dump(minted.manifest))
    batch_token = _caller_token(k8s, namespace, "batch", AUDIENCE)

    config = tmp_path / "auth.yaml"
    config.write_text(yaml.safe_dump({
        "mode": "bearer", "authorize": "rbac", "api_key_secrets": {"namespace": namespace},
        "kubernetes": {"audience": AUDIENCE, "token_file": str(tmp_path / "token"),
                       "ca_file": str(k8s.dir / "pki" / "ca.crt")},
        "cache": {"ttl": 1, "negative_ttl": 0.2},
    }))
    server = urlsplit(k8s.server)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", str(server.hostname))
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(server.port))
    manifests = [_in(namespace, endpoint(name, [openai_entity(url)])) for name in ("chat", "private")]
    with serve_process(tmp_path, manifests, secrets=SECRETS, auth=["--auth-config", str(config)]) as proxy:
        def bearer(credential: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {credential}"}

        deadline = time.monotonic() + 15  # the proxy's first Secret list, while RBAC settles under load
        while httpx.post(f"{proxy.url}/serving-endpoints/chat/invocations", json=CHAT, headers=bearer(erin.key),
                         timeout=10).status_code == 503:
            assert time.monotonic() < deadline, "the API-key Secrets were never listed"
            time.sleep(0.2)
        assert httpx.get(f"{proxy.url}/readyz").json()["authentication"] == {"mode": "bearer", "open": False}

        # the Databricks SDK: erin may query chat only, so she sees chat only
        w = WorkspaceClient(host=proxy.url, token=erin.key, auth_type="pat")
        assert [e.name for e in w.serving_endpoints.list()] == ["chat"]
        assert w.serving_endpoints.get("chat").name == "chat"
        with pytest.raises(PermissionDenied, match="'private'"):
            w.serving_endpoints.get("private")
        messages = [ChatMessage(role=ChatMessageRole.USER, content="hi")]
        assert w.serving_endpoints.query(name="chat", messages=messages).choices is not None
        with pytest.raises(PermissionDenied):
            w.serving_endpoints.query(name="private", messages=messages)

        # the OpenAI models API and the MLflow gateway's endpoints, in their own shapes
        client = openai.OpenAI(base_url=proxy.url + "/serving-endpoints", api_key=erin.key, max_retries=0)
        assert [m.id for m in client.models.list()] == ["chat"]
        with pytest.raises(openai.PermissionDeniedError) as denied:
            client.models.retrieve("private")
        assert denied.value.body["type"] == "permission_error"  # type: ignore[index]
        mlflow_list = httpx.get(f"{proxy.url}/api/2.0/endpoints/", headers=bearer(erin.key), timeout=10)
        assert [e["name"] for e in mlflow_list.json()["endpoints"]] == ["chat"]
        mlflow_get = httpx.get(f"{proxy.url}/api/2.0/endpoints/private", headers=bearer(erin.key), timeout=10)
        assert mlflow_get.status_code == 403
        assert list(mlflow_get.json()) == ["detail"]
        raw_get = httpx.get(f"{proxy.url}/api/2.0/serving-endpoints/private", headers=bearer(erin.key), timeout=10)
        assert raw_get.json()["error_code"] == "PERMISSION_DENIED"

        # a valid key without any binding sees nothing; a ServiceAccount token bound to modelgate-query, both
        assert WorkspaceClient(host=proxy.url, token=frank.key, auth_type="pat").serving_endpoints.list() == []
        batch = WorkspaceClient(host=proxy.url, token=batch_token, auth_type="pat")
        assert [e.name for e in batch.serving_endpoints.list()] == ["chat", "private"]
        assert httpx.post(f"{proxy.url}/serving-endpoints/private/invocations", json=CHAT, headers=bearer(batch_token),
                          timeout=10).status_code == 200
        # without a credential: 401, the list included
        anonymous = httpx.get(f"{proxy.url}/api/2.0/serving-endpoints", timeout=10)
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == 'Bearer realm="modelgate"'
