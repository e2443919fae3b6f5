"""``helm install`` on the real node: the operator runs as a pod from the image built here (non-root,
read-only root filesystem, its ServiceAccount token), reconciles a sample endpoint whose proxy pod becomes
Ready and answers a chat request; killed while it reconciles a change, the operator pod is replaced and the
replacement finishes it; uninstall. Two replicas with peering: one active, the other takes over when it dies."""

from __future__ import annotations

import json
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

        # change the endpoint and kill the operator pod at once (SIGKILL, right after the change: usually mid-reconcile): the
        # replacement pod finishes the work
        apply_endpoint(nc, ns, NAME, chat_spec(api_base, replicas=2))
        nc.cluster.kubectl("delete", "pod", "-n", ns, op_pod, "--grace-period=0", "--force", "--wait=false")
        wait("a new operator pod Ready", lambda: (p := _operator_ready(nc, ns)) and p != op_pod, 120)
        wait("2 ready proxy pods after the operator restarted", lambda: len(ready_addresses(client, ns, NAME)) == 2,
             120)  # fmt: skip

        helm.run("uninstall", RELEASE, "-n", ns, "--wait", "--timeout", "120s", timeout=180)
        wait("the operator pod gone", lambda: not nc.cluster.kubectl(
            "get", "pods", "-n", ns, "-l", "app.kubernetes.io/name=modelgate", "-o", "name").stdout.strip(), 90)


def _operator_pods(nc: NodeCluster, ns: str) -> dict[str, bool]:
    """Operator pod name -> Ready (pods being deleted left out)."""
    out = nc.cluster.kubectl("get", "pods", "-n", ns, "-l", "app.kubernetes.io/name=modelgate", "-o", "json").stdout
    return {
        pod["metadata"]["name"]: bool(pod["status"].get("containerStatuses") and pod["status"]["containerStatuses"][0]["ready"])
        for pod in json.loads(out)["items"] if not pod["metadata"].get("deletionTimestamp")
    }  # fmt: skip


def _pod_logs(nc: NodeCluster, ns: str, pod: str) -> str:
    got = nc.cluster.kubectl("logs", "-n", ns, pod, check=False)
    return got.stdout if got.returncode == 0 else ""


def peering_state(log: str) -> str:
    """kopf starts a peering operator paused; its last pause/resume log line says where it stands."""
    state = "paused"
    for line in log.splitlines():
        if "Resuming operations after the pause" in line:
            state = "active"
        elif "Pausing operations in favour of" in line or "Pausing all operators" in line:
            state = "paused"
    return state


def test_two_operator_replicas_with_peering_one_active_and_failover(
    node_cluster: NodeCluster, node_namespace: str, tmp_path: Path, report: Callable[[str], None]
) -> None:
    """replicaCount=2 as the chart runs it: both pods register in the KopfPeering, exactly one reconciles (the
    other logs no reconcile), and when the active pod is killed another one takes over and reconciles."""
    nc, ns = node_cluster, node_namespace
    client = admin(nc)
    helm = _helm(nc, tmp_path)
    peering = f"{RELEASE}-modelgate"
    reconciled = f"reconciled {ns}/{NAME} "
    put_secret(client, ns, "openai", {"key": "sk-peer"})
    try:
        with provider_on_bridge("sk-peer") as api_base:
            helm.run("install", RELEASE, str(CHART), "-n", ns, *set_args({**_values(nc), "replicaCount": 2}),
                     "--wait=false", timeout=120)  # fmt: skip
            pods = wait("2 operator pods Ready", lambda: (p := _operator_pods(nc, ns)) and len(p) == 2
                        and all(p.values()) and sorted(p), 120)  # fmt: skip

            def peers() -> dict[str, dict[str, object]]:
                got = nc.cluster.kubectl("get", "kopfpeering", peering, "-n", ns, "-o", "json", check=False)
                return dict(json.loads(got.stdout).get("status") or {}) if got.returncode == 0 else {}

            wait("both replicas in the KopfPeering", lambda: len(peers()) == 2, 60)
            assert len({p["priority"] for p in peers().values()}) == 2, "replicas must not tie (kopf pauses both)"

            apply_endpoint(nc, ns, NAME, chat_spec(api_base))
            wait("endpoint Ready", lambda: (condition(endpoint(client, ns, NAME), "Ready") or {}).get("status")
                 == "True", 120)  # fmt: skip
            logs = {p: _pod_logs(nc, ns, p) for p in pods}
            states = {p: peering_state(text) for p, text in logs.items()}
            active = [p for p, s in states.items() if s == "active"]
            assert len(active) == 1, f"exactly one replica is active: {states}"
            (standby,) = set(pods) - set(active)
            assert reconciled in logs[active[0]], logs[active[0]][-3000:]
            assert reconciled not in logs[standby], f"the paused replica reconciled:\n{logs[standby][-3000:]}"
            report(f"peering: {active[0]} active, {standby} paused; only the active one reconciled")

            # kill the active pod: another replica (the standby, or the Deployment's replacement if it outranks
            # it) resumes and reconciles the next change
            t0 = time.monotonic()
            nc.cluster.kubectl("delete", "pod", "-n", ns, active[0], "--wait=false")

            def taken_over() -> str:
                for pod in _operator_pods(nc, ns):
                    if pod != active[0] and peering_state(_pod_logs(nc, ns, pod)) == "active":
                        return pod
                return ""

            new_active = wait("another replica to take over", taken_over, 120, interval=0.2)
            takeover = time.monotonic() - t0
            report(f"peering takeover: {new_active} active {takeover:.1f}s after {active[0]} was killed")
            apply_endpoint(nc, ns, NAME, chat_spec(api_base, replicas=2))
            wait("2 ready proxy pods, reconciled by the new active replica",
                 lambda: len(ready_addresses(client, ns, NAME)) == 2, 120)  # fmt: skip
            assert reconciled in _pod_logs(nc, ns, new_active)
            live = wait("2 operator pods Ready again", lambda: (p := _operator_pods(nc, ns)) and len(p) == 2
                        and all(p.values()) and sorted(p), 120)  # fmt: skip
            states = {p: peering_state(_pod_logs(nc, ns, p)) for p in live}
            assert sorted(states.values()) == ["active", "paused"], states
    except BaseException:
        out = nc.cluster.kubectl("logs", "-n", ns, "-l", "app.kubernetes.io/name=modelgate", "--tail=30", "--prefix",
                                 check=False)  # fmt: skip
        print(f"operator pod logs:\n{out.stdout}{out.stderr}")
        raise
    helm.run("uninstall", RELEASE, "-n", ns, "--wait", "--timeout", "120s", timeout=180)
