"""``make up``'s workspace gateway: the namespace's one URL for every endpoint and the Databricks management API.

The operator renders the gateway (docs/workspace-gateway.md) in every namespace with ServingEndpoints. ``make up``
waits for its pod, gives the quickstart a caller that may query *and* manage (a ServiceAccount bound to the chart's
``modelgate-manage`` ClusterRole, plus ``get`` on the quickstart's provider Secret so a create through the API may
reference it) and prints ``DATABRICKS_HOST`` / ``DATABRICKS_TOKEN`` and the OpenAI ``base_url`` for it.

The gateway authenticates bearer tokens only (no API keys): the token is a ServiceAccount token for the audience
the proxies check, minted with ``kubectl create token`` (valid for :data:`TOKEN_DURATION`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from modelgate_operator import render, render_gateway

from .devcluster import DevCluster
from .pods import ready_pod_url

SERVICE_ACCOUNT = "modelgate-quickstart"
AUDIENCE = "modelgate.io/proxy"
TOKEN_DURATION = "24h"


class GatewayNotReady(Exception):
    """The namespace's gateway pod did not become Ready in time; the message says what was seen."""


def caller_manifests(namespace: str, provider_secret: str) -> list[dict[str, Any]]:
    """The ServiceAccount, its RoleBinding to ``modelgate-manage`` and the Secret read a create needs."""
    rbac = "rbac.authorization.k8s.io"
    subject = [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace}},
        {"apiVersion": f"{rbac}/v1", "kind": "RoleBinding",
         "metadata": {"name": f"{SERVICE_ACCOUNT}-manage", "namespace": namespace},
         "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "modelgate-manage"}, "subjects": subject},
        {"apiVersion": f"{rbac}/v1", "kind": "Role",
         "metadata": {"name": f"{SERVICE_ACCOUNT}-secret", "namespace": namespace},
         "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [provider_secret],
                    "verbs": ["get"]}]},
        {"apiVersion": f"{rbac}/v1", "kind": "RoleBinding",
         "metadata": {"name": f"{SERVICE_ACCOUNT}-secret", "namespace": namespace},
         "roleRef": {"apiGroup": rbac, "kind": "Role", "name": f"{SERVICE_ACCOUNT}-secret"}, "subjects": subject},
    ]  # fmt: skip


def gateway_url(cluster: DevCluster, namespace: str) -> str:
    """A Ready gateway pod's base URL; "" if none."""
    selector = ",".join(f"{k}={v}" for k, v in render_gateway.selector_labels().items())
    return ready_pod_url(cluster, namespace, selector, render.PROXY_PORT)


def wait_gateway(cluster: DevCluster, namespace: str, timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        url = gateway_url(cluster, namespace)
        if url:
            return url
        time.sleep(0.5)
    pods = cluster.kubectl("get", "pods", "-n", namespace, "-o", "wide", check=False).stdout
    raise GatewayNotReady(f"the workspace gateway of namespace {namespace} has no Ready pod after {timeout:.0f}s:\n"
                          f"{pods}")  # fmt: skip


def mint_token(cluster: DevCluster, namespace: str, path: Path) -> str:
    """A fresh token of the quickstart ServiceAccount, also written to ``path`` (mode 0600)."""
    token = cluster.kubectl("create", "token", SERVICE_ACCOUNT, "-n", namespace, "--audience", AUDIENCE,
                            "--duration", TOKEN_DURATION).stdout.strip()  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token


def usage(url: str, token_path: Path, endpoint: str, python: str) -> str:
    return f"""
The workspace gateway: every endpoint of the namespace and the Databricks management API on one URL, as
{SERVICE_ACCOUNT} (may query and manage; its token lasts {TOKEN_DURATION}, `make up` mints a new one):
  export DATABRICKS_HOST={url} DATABRICKS_TOKEN=$(cat {token_path})
  curl -s $DATABRICKS_HOST/api/2.0/serving-endpoints -H "Authorization: Bearer $DATABRICKS_TOKEN"
  {python} - <<'PY'   # the OpenAI client on the workspace URL: model = the endpoint's name
import os
from openai import OpenAI
client = OpenAI(base_url=os.environ["DATABRICKS_HOST"] + "/serving-endpoints", api_key=os.environ["DATABRICKS_TOKEN"])
print(client.chat.completions.create(model="{endpoint}", messages=[{{"role": "user", "content": "Hello"}}])
      .choices[0].message.content)
PY
  (MLflow: mlflow.deployments.get_deploy_client("databricks") reads the same two variables.)"""
