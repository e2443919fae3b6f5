"""The workspace gateway exactly as the operator renders it, run as its own ServiceAccount against the real
API server: the Deployment's command (only the paths a kubelet would provide rewritten: the mounted auth config,
the projected Secret keys, the token, the port), the operator's RBAC for it, and callers with Kubernetes tokens.
The shipped Secret-reference admission policy is applied too (test_secret_access_k8s.py shows the gateway's
exemption once it is in force). One URL serves a kubectl-applied endpoint and one
created through MLflow's Databricks client; a caller without rights gets PERMISSION_DENIED until the permissions API grants him CAN_QUERY; the gateway follows (its ownerReferences) as endpoints come and go."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Secret

from modelgate_dev.devcluster import DevCluster
from modelgate_operator import render_auth, render_gateway
from tests.identity.test_kube_reviews import await_rbac
from tests.standins.anthropic_api import API_KEY as ANTHROPIC_KEY
from tests.standins.anthropic_api import REPLY as ANTHROPIC_REPLY
from tests.standins.anthropic_api import make_app as anthropic_app
from tests.standins.server import free_port, serve_app

from .harness import OperatorProcess, put_secret, wait_for
from .samples import endpoint as manifest
from .test_secret_access_k8s import policy  # noqa: F401 - the shipped Secret-reference policy, in force here

GW = render_gateway.NAME
FILES = Path(__file__).resolve().parents[2] / "charts" / "modelgate" / "files"
SEED = {"name": "anthropic-completions-endpoint", "config": {"served_entities": [{"external_model": {
    "name": "claude-2", "provider": "anthropic", "task": "llm/v1/completions",
    "anthropic_config": {"anthropic_api_key": "{{secrets/my_anthropic_secret_scope/anthropic_api_key}}"}}}]}}
SECRET_READER = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "secret-reader"},
                 "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}


def _owners(client: Client, namespace: str) -> list[str]:
    dep = client.get(Deployment, GW, namespace=namespace)
    return sorted(r.name for r in (dep.metadata.ownerReferences or []) if dep.metadata)  # type: ignore[union-attr]


def _token(k8s: DevCluster, namespace: str, sa: str, *audiences: str) -> str:
    args = [a for aud in audiences for a in ("--audience", aud)]
    return k8s.kubectl("create", "token", sa, "-n", namespace, *args).stdout.strip()


def _replace(argv: list[str], flag: str, value: str) -> None:
    argv[argv.index(flag) + 1] = value


@pytest.fixture
def rendered_gateway(k8s: DevCluster, namespace: str, operator: OperatorProcess, client: Client,
                     tmp_path: Path, policy: str) -> Iterator[dict[str, Any]]:  # fmt: skip  # noqa: F811
    """The anthropic stand-in, an endpoint on it (so the operator renders the gateway), and the gateway's pod
    played locally: its container command as rendered, under its ServiceAccount's own token."""
    with serve_app(anthropic_app()) as anthropic_url:
        put_secret(client, namespace, "my-anthropic-secret-scope", {"anthropic_api_key": ANTHROPIC_KEY})
        spec = {"servedEntities": [{"name": "claude", "externalModel": {
            "name": "claude-2", "provider": "anthropic", "task": "llm/v1/completions", "anthropicConfig": {
                "anthropicApiKey": "{{secrets/my-anthropic-secret-scope/anthropic_api_key}}",
                "anthropicApiBase": anthropic_url}}}]}  # fmt: skip
        k8s.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(manifest("served", namespace, spec)))
        dep = wait_for("the gateway", lambda: [d for d in client.list(Deployment, namespace=namespace)
                                               if d.metadata and d.metadata.name == GW], timeout=30)[0].to_dict()  # fmt: skip
        pod = dep["spec"]["template"]["spec"]
        await_rbac(k8s, namespace, "create", "tokenreviews.authentication.k8s.io", sa=GW)
        await_rbac(k8s, namespace, "create", "servingendpoints.serving.modelgate.io", sa=GW)
        # what the kubelet would mount: the ConfigMap's auth.yaml, the projected Secret keys, the token and CA
        auth = yaml.safe_load((client.get(ConfigMap, GW, namespace=namespace).data or {})[render_auth.AUTH_KEY])
        token, ca = tmp_path / "token", str(k8s.dir / "pki" / "ca.crt")
        token.write_text(_token(k8s, namespace, GW))
        auth["kubernetes"].update({"server": k8s.server, "token_file": str(token), "ca_file": ca})
        (tmp_path / "auth.yaml").write_text(yaml.safe_dump(auth))
        secrets = tmp_path / "secrets"
        for source in next(v for v in pod["volumes"] if v["name"] == "secrets")["projected"]["sources"]:
            data = client.get(Secret, source["secret"]["name"], namespace=namespace).data or {}
            for item in source["secret"]["items"]:
                (secrets / item["path"]).parent.mkdir(parents=True, exist_ok=True)
                (secrets / item["path"]).write_bytes(base64.b64decode(data[item["key"]]))
        argv = list(pod["containers"][0]["command"])
        port = free_port()
        _replace(argv, "--auth-config", str(tmp_path / "auth.yaml"))
        _replace(argv, "--secrets-dir", str(secrets))
        _replace(argv, "--host", "127.0.0.1")
        _replace(argv, "--port", str(port))
        argv += ["--management-server", k8s.server, "--management-token-file", str(token), "--management-ca-file", ca]
        exe = str(Path(sys.executable).parent / argv[0])
        with (tmp_path / "gateway.log").open("w") as log:
            proc = subprocess.Popen([exe, *argv[1:]], stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for("the gateway ready", lambda: _ready(url), timeout=30)
            yield {"url": url, "log": tmp_path / "gateway.log", "anthropic": anthropic_url}
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def _ready(url: str) -> bool:
    try:
        return requests.get(url + "/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_the_rendered_gateway_serves_and_manages_the_namespace_on_one_url(
    k8s: DevCluster, namespace: str, client: Client, rendered_gateway: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import openai
    from mlflow.deployments import get_deploy_client

    url = rendered_gateway["url"]
    for role in ("manage",):
        k8s.kubectl("apply", "-f", str(FILES / f"modelgate-{role}-clusterrole.yaml"))
    k8s.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(SECRET_READER))
    for sa in ("alice", "bob"):
        k8s.kubectl("create", "serviceaccount", sa, "-n", namespace)
    k8s.kubectl("create", "rolebinding", "alice", "--clusterrole=modelgate-manage",
                f"--serviceaccount={namespace}:alice", "-n", namespace)  # fmt: skip
    k8s.kubectl("create", "rolebinding", "alice-secrets", "--role=secret-reader",
                f"--serviceaccount={namespace}:alice", "-n", namespace)  # fmt: skip
    await_rbac(k8s, namespace, "create", "servingendpoints.serving.modelgate.io", sa="alice")
    audience = render_auth.DEFAULT_AUDIENCE
    alice, bob = _token(k8s, namespace, "alice", audience), _token(k8s, namespace, "bob", audience)

    oai = openai.OpenAI(base_url=url + "/serving-endpoints", api_key=alice, max_retries=0)
    assert oai.completions.create(model="served", prompt="Hello", max_tokens=20).choices[0].text == ANTHROPIC_REPLY

    monkeypatch.setenv("DATABRICKS_HOST", url)
    monkeypatch.setenv("DATABRICKS_TOKEN", alice)
    mlflow = get_deploy_client("databricks")
    config = SEED["config"]
    config["served_entities"][0]["external_model"]["anthropic_config"]["anthropic_api_base"] = rendered_gateway[
        "anthropic"]  # the stand-in (a modelgate extension field)
    created = mlflow.create_endpoint(name=SEED["name"], config=config)
    assert created["creator"] == f"system:serviceaccount:{namespace}:alice"
    stored = k8s.kubectl("get", "servingendpoint", SEED["name"], "-n", namespace, "-o", "yaml").stdout
    assert "my-anthropic-secret-scope" in stored
    wait_for("the gateway owned by both", lambda: _owners(client, namespace) == [SEED["name"], "served"], timeout=30)

    def answered() -> bool:
        try:
            reply = oai.completions.create(model=SEED["name"], prompt="Hello", max_tokens=20).choices[0].text
        except openai.NotFoundError:
            return False  # the watch has not served it yet
        return reply == ANTHROPIC_REPLY

    wait_for("the created endpoint answered through the gateway", answered, timeout=20)

    monkeypatch.setenv("DATABRICKS_TOKEN", bob)
    denied = get_deploy_client("databricks")
    with pytest.raises(requests.HTTPError, match="PERMISSION_DENIED"):
        denied.create_endpoint(name="bobs-endpoint", config=config)
    with pytest.raises(requests.HTTPError, match="PERMISSION_DENIED"):
        denied.delete_endpoint(SEED["name"])
    bob_oai = openai.OpenAI(base_url=url + "/serving-endpoints", api_key=bob, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        bob_oai.completions.create(model="served", prompt="Hello", max_tokens=20)

    # the permissions API, with the rights the chart's gateway ClusterRole gives: alice lets bob query `served`
    acl = {"access_control_list": [{"service_principal_name": "bob", "permission_level": "CAN_QUERY"}]}
    put = requests.put(url + "/api/2.0/permissions/serving-endpoints/served", json=acl, timeout=20,
                       headers={"Authorization": f"Bearer {alice}"})  # fmt: skip
    assert put.status_code == 200, put.text

    def bob_answered() -> bool:
        try:
            return bob_oai.completions.create(model="served", prompt="Hi", max_tokens=20).choices[0].text == (
                ANTHROPIC_REPLY)
        except openai.PermissionDeniedError:
            return False  # until the gateway's cached denial expires

    wait_for("bob allowed to query", bob_answered, timeout=30)

    monkeypatch.setenv("DATABRICKS_TOKEN", alice)  # MLflow's client reads the environment at every call
    mlflow.delete_endpoint(SEED["name"])
    wait_for("deleted", lambda: k8s.kubectl("get", "servingendpoint", SEED["name"], "-n", namespace,
                                            check=False).returncode != 0 or None, timeout=30)  # fmt: skip
    wait_for("the gateway owned by one", lambda: _owners(client, namespace) == ["served"], timeout=30)
    assert "Traceback" not in rendered_gateway["log"].read_text()
