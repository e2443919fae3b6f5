"""``helm install`` on the real node: the operator runs as a pod from the image built here (non-root,
read-only root filesystem, its ServiceAccount token), reconciles a sample endpoint whose proxy pod becomes
Ready and answers a chat request; killed mid-way, the operator pod is replaced and carries on; uninstall."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from modelgate_dev.node.cluster import NodeCluster
from modelgate_operator import render
from tests.chart.helmtool import CHART, Helm, set_args
from tests.operator.harness import condition, endpoint, put_secret

from .harness import admin, apply_endpoint, chat, chat_spec, provider_on_bridge, proxy_pods, ready_addresses, wait

NAME = "chat"
RELEASE = "mg"


def _helm(nc: NodeCluster, tmp: Path) -> Helm:
    env = {**nc.cluster.env(), "HELM_CACHE_HOME": str(tmp / "hc"), "HELM_CONFIG_HOME": str(tmp / "hcfg"),
           "HELM_DATA_HOME": str(tmp / "hd")}  # fmt: skip
    return Helm(nc.cluster.bin_dir / "helm", env=env)


def _values(nc: NodeCluster) -> dict[str, object]:
    operator_ref, proxy_ref = nc.node.images["operator"].ref, nc.node.images["proxy"].ref
    repo, tag = operator_ref.rsplit(":", 1)
    proxy_repo, proxy_tag = proxy_ref.rsplit(":", 1)
    return {
        "image": {"repository": repo, "tag": tag, "pullPolicy": "Never"},
        "proxy.image": {"repository": proxy_repo, "tag": proxy_tag, "pullPolicy": "Never"},
        "extraEnv": [{"name": k, "value": v} for k, v in nc.node.pod_api_env().items()],
    }


def _operator_ready(nc: NodeCluster, ns: str) -> str:
    """Name of the Ready operator pod, or empty."""
    out = nc.cluster.kubectl(
        "get", "pods", "-n", ns, "-l", "app.kubernetes.io/name=modelgate", "-o",
        'jsonpath={range .items[?(@.status.containerStatuses[0].ready==true)]}{.metadata.name}{" "}{end}',
    ).stdout.split()  # fmt: skip
    return out[0] if len(out) == 1 else ""


def test_helm_install_runs_the_operator_as_a_pod(
    node_cluster: NodeCluster, node_namespace: str, tmp_path: Path, report: Callable[[str], None]
) -> None:
    try:
        _install_and_use(node_cluster, node_namespace, tmp_path, report)
    except BaseException:
        logs = node_cluster.cluster.kubectl("logs", "-n", node_namespace, "-l", "app.kubernetes.io/name=modelgate",
                                            "--tail=40", "--prefix", check=False)  # fmt: skip
        print(f"operator pod logs:\n{logs.stdout}{logs.stderr}")
        raise


def _install_and_use(nc: NodeCluster, ns: str, tmp_path: Path, report: Callable[[str], None]) -> None:
    client = admin(nc)
    helm = _helm(nc, tmp_path)
    put_secret(client, ns, "openai", {"key": "sk-helm"})
    with provider_on_bridge("sk-helm") as api_base:
        t0 = time.monotonic()
        helm.run("install", RELEASE, str(CHART), "-n", ns, *set_args(_values(nc)), "--wait", "--timeout", "180s",
                 timeout=240)  # fmt: skip
        op_pod = wait("the operator pod Ready", lambda: _operator_ready(nc, ns), 60)
        report(f"helm install --wait: operator pod Ready after {time.monotonic() - t0:.1f}s")
        uid = nc.cluster.kubectl("exec", "-n", ns, op_pod, "--", "id", "-u").stdout.strip()
        assert uid == "65532"
        touch = nc.cluster.kubectl("exec", "-n", ns, op_pod, "--", "touch", "/x", check=False)
        assert "Read-only file system" in touch.stderr, touch

        apply_endpoint(nc, ns, NAME, chat_spec(api_base))
        wait("endpoint Ready", lambda: (condition(endpoint(client, ns, NAME), "Ready") or {}).get("status") == "True",
             120)  # fmt: skip
        pod = proxy_pods(client, ns, NAME)[0]
        assert pod.status is not None
        assert pod.status.podIP
        resp = chat(f"http://{pod.status.podIP}:{render.PROXY_PORT}", "via helm", NAME)
        assert resp.status_code == 200, resp.text
        assert "via helm" in resp.json()["choices"][0]["message"]["content"]

        # kill the operator pod, change the endpoint meanwhile: the replacement pod reconciles it
        nc.cluster.kubectl("delete", "pod", "-n", ns, op_pod, "--grace-period=0", "--force", "--wait=false")
        apply_endpoint(nc, ns, NAME, chat_spec(api_base, replicas=2))
        wait("a new operator pod Ready", lambda: (p := _operator_ready(nc, ns)) and p != op_pod, 120)
        wait("2 ready proxy pods after the operator restarted", lambda: len(ready_addresses(client, ns, NAME)) == 2,
             120)  # fmt: skip

        helm.run("uninstall", RELEASE, "-n", ns, "--wait", "--timeout", "120s", timeout=180)
        wait("the operator pod gone", lambda: not nc.cluster.kubectl(
            "get", "pods", "-n", ns, "-l", "app.kubernetes.io/name=modelgate", "-o", "name").stdout.strip(), 90)
