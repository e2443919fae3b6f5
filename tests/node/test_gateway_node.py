"""The workspace gateway's pod on the real node (docs/workspace-gateway.md): the operator renders it next to an
endpoint's proxy; the kubelet mounts the referenced Secret key, its ServiceAccount token and the auth config; the
pod becomes Ready and answers a caller's Kubernetes token on one URL (the Databricks and the OpenAI routes), after
the caller is granted ``query``. Marked ``node`` (uses the node fixtures) like the other tests here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from modelgate_dev.node.cluster import NodeCluster
from modelgate_dev.quickstart_gateway import wait_gateway
from tests.operator.harness import REPO, put_secret

from .harness import admin, apply_endpoint, chat_spec, operator_on, provider_on_bridge, wait

NAME = "chat"
AUDIENCE = "modelgate.io/proxy"
QUERY_ROLE = REPO / "charts" / "modelgate" / "files" / "modelgate-query-clusterrole.yaml"


def test_the_gateway_pod_answers_a_namespace_endpoint_on_one_url(
    node_cluster: NodeCluster, node_namespace: str, tmp_path: Path, report: Callable[[str], None],
) -> None:
    nc, ns = node_cluster, node_namespace
    k = nc.cluster
    k.kubectl("apply", "-f", str(QUERY_ROLE))
    put_secret(admin(nc), ns, "openai", {"key": "sk-node-gateway"})
    with provider_on_bridge("sk-node-gateway") as api_base, operator_on(nc, ns, tmp_path / "operator.log"):
        apply_endpoint(nc, ns, NAME, chat_spec(api_base))
        base = wait_gateway(nc.cluster, ns, timeout=240)  # make up's lookup: a Ready pod's IP (no kube-proxy)
        k.kubectl("create", "serviceaccount", "caller", "-n", ns)
        token = k.kubectl("create", "token", "caller", "-n", ns, "--audience", AUDIENCE).stdout.strip()
        headers = {"Authorization": f"Bearer {token}"}
        body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
        invocations = f"{base}/serving-endpoints/{NAME}/invocations"
        denied = httpx.post(invocations, json=body, headers=headers, timeout=20, trust_env=False)
        assert denied.status_code == 403, denied.text  # the gateway checks query like the proxy in bearer mode
        k.kubectl("create", "rolebinding", "caller-query", "--clusterrole=modelgate-query",
                  f"--serviceaccount={ns}:caller", "-n", ns)  # fmt: skip
        wait("query granted", lambda: httpx.post(invocations, json=body, headers=headers, timeout=20,
                                                 trust_env=False).status_code == 200, 30)  # fmt: skip
        openai = httpx.post(f"{base}/serving-endpoints/chat/completions", json={**body, "model": NAME},
                            headers=headers, timeout=20, trust_env=False)  # fmt: skip
        assert openai.status_code == 200, openai.text
        assert openai.json()["choices"][0]["message"]["content"]
        listed = httpx.get(f"{base}/api/2.0/serving-endpoints", headers=headers, timeout=20, trust_env=False)
        assert listed.status_code == 403, listed.text  # the management API: list needs `list`, not granted here
        assert listed.json()["error_code"] == "PERMISSION_DENIED"
        report(f"gateway pod {base} answered {NAME} on the Databricks and OpenAI routes")
