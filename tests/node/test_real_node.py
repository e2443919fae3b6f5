"""End-to-end on the real dev node: the operator's rendered Deployments run as real pods from the images
built here (non-root, read-only root filesystem), readiness comes from the kubelet's probes, and the
Deployment controller, garbage collector and scheduler are the real ones."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from lightkube.resources.apps_v1 import Deployment

from modelgate_dev.node.cluster import NodeCluster
from modelgate_operator import render
from tests.chart.test_argocd_health import run_health
from tests.operator.harness import condition, endpoint, put_secret

from .harness import (
    Load,
    admin,
    apply_endpoint,
    chat,
    chat_spec,
    operator_on,
    provider_on_bridge,
    proxy_pods,
    ready_addresses,
    wait,
)

NAME = "chat"
CHILD = render.child_name(NAME)


def _ready(nc: NodeCluster, ns: str, status: str = "True") -> bool:
    obj = endpoint(admin(nc), ns, NAME)
    cond = condition(obj, "Ready")
    return bool(cond and cond["status"] == status and obj["status"].get("observedGeneration") == obj["metadata"]["generation"])


def test_endpoint_ready_from_real_pod_and_chat_through_it(
    node_cluster: NodeCluster, node_namespace: str, tmp_path: Path,
    report: Callable[[str], None],
) -> None:
    nc, ns = node_cluster, node_namespace
    client = admin(nc)
    put_secret(client, ns, "openai", {"key": "sk-node-1"})
    with provider_on_bridge("sk-node-1") as api_base, operator_on(nc, ns, tmp_path / "operator.log") as op:
        t0 = time.monotonic()
        apply_endpoint(nc, ns, NAME, chat_spec(api_base))
        wait("Ready=True", lambda: _ready(nc, ns), 120)
        took = time.monotonic() - t0
        pods = proxy_pods(client, ns, NAME)
        assert len(pods) == 1
        pod = pods[0]
        assert pod.status is not None
        assert pod.status.podIP
        statuses = pod.status.containerStatuses or []
        assert statuses, pod.status
        assert statuses[0].ready, statuses
        assert condition(endpoint(client, ns, NAME), "ProxyAvailable")["status"] == "True"  # type: ignore[index]
        report(f"endpoint Ready from a real pod in {took:.1f}s (pod {pod.status.podIP})")

        # the image runs as rendered: uid 65532, read-only root filesystem
        assert pod.metadata is not None
        assert pod.metadata.name
        uid = nc.cluster.kubectl("exec", "-n", ns, pod.metadata.name, "--", "id", "-u").stdout.strip()
        assert uid == str(render.PROXY_UID)
        touch = nc.cluster.kubectl("exec", "-n", ns, pod.metadata.name, "--", "touch", "/x", check=False)
        assert touch.returncode != 0, touch
        assert "Read-only file system" in touch.stderr, touch

        # a chat request through the pod reaches the provider on the host and comes back
        resp = chat(f"http://{pod.status.podIP}:{render.PROXY_PORT}", "hello node", NAME)
        assert resp.status_code == 200, resp.text
        assert "hello node" in resp.json()["choices"][0]["message"]["content"]
        obj = endpoint(client, ns, NAME)
        assert obj["status"]["state"] == {"ready": "READY", "configUpdate": "NOT_UPDATING"}
        assert [e["state"]["deployment"] for e in obj["status"]["servedEntities"]] == ["DEPLOYMENT_READY"]
        events = nc.cluster.kubectl("get", "events", "-n", ns, "-o", "jsonpath={.items[*].reason}").stdout.split()
        assert "EndpointReady" in events, events
        # no key in the proxy pod's logs nor the operator's
        pod_logs = nc.cluster.kubectl("logs", "-n", ns, pod.metadata.name).stdout
        assert pod_logs
        assert "sk-node-1" not in pod_logs
        assert "sk-node-1" not in op.logs()

        # guardrails the proxy cannot enforce: it serves, and Ready says what it does not enforce
        spec = {**chat_spec(api_base), "aiGateway": {"guardrails": {"input": {"safety": True}}}}
        apply_endpoint(nc, ns, NAME, spec)
        wait("Ready=True/GuardrailsNotEnforced", lambda: _ready(nc, ns) and (condition(
            endpoint(client, ns, NAME), "Ready") or {}).get("reason") == "GuardrailsNotEnforced", 120)  # fmt: skip
        ready = condition(endpoint(client, ns, NAME), "Ready")
        assert ready is not None
        assert "WITHOUT some requested guardrails: aiGateway.guardrails.input.safety" in ready["message"]
        assert "Traceback" not in op.logs()


def test_rotated_secret_rolls_pods_with_zero_failed_requests(
    node_cluster: NodeCluster, node_namespace: str, tmp_path: Path,
    report: Callable[[str], None],
) -> None:
    nc, ns = node_cluster, node_namespace
    client = admin(nc)
    put_secret(client, ns, "openai", {"key": "sk-old"})
    with provider_on_bridge("sk-old", "sk-new") as api_base, operator_on(nc, ns, tmp_path / "operator.log"):
        apply_endpoint(nc, ns, NAME, chat_spec(api_base, replicas=2))
        wait("Ready=True with 2 ready pods", lambda: _ready(nc, ns) and len(ready_addresses(client, ns, NAME)) == 2,
             120)  # fmt: skip
        before = {p.metadata.name for p in proxy_pods(client, ns, NAME) if p.metadata}
        with Load(client, ns, NAME) as load:
            time.sleep(2)
            warm = load.sent
            t0 = time.monotonic()
            put_secret(client, ns, "openai", {"key": "sk-new"})

            def rolled() -> bool:
                dep = client.get(Deployment, CHILD, namespace=ns)
                pods = proxy_pods(client, ns, NAME)
                names = {p.metadata.name for p in pods if p.metadata}
                st = dep.status
                return bool(
                    st and not (names & before) and len(pods) == 2 and st.updatedReplicas == 2
                    and st.availableReplicas == 2 and st.observedGeneration == (dep.metadata and dep.metadata.generation)
                    and len(ready_addresses(client, ns, NAME)) == 2
                )  # fmt: skip

            wait("the roll to finish (2 new pods ready, old ones gone)", rolled, 180)
            roll = time.monotonic() - t0
            time.sleep(2)
        report(f"rotation roll: {load.sent} requests sent ({load.sent - warm} from the rotation on), "
              f"{load.failed} failed, roll took {roll:.1f}s")  # fmt: skip
        assert load.sent - warm > 20, "the load did not run during the roll"
        assert load.failed == 0, load.errors
        # the new pods serve with the new key (the provider accepts both; the mounted Secret has the new one)
        pod = proxy_pods(client, ns, NAME)[0]
        assert pod.metadata is not None
        assert pod.metadata.name
        key = nc.cluster.kubectl("exec", "-n", ns, pod.metadata.name, "--", "cat",
                                 f"{render.SECRETS_DIR}/openai/key").stdout  # fmt: skip
        assert key == "sk-new"


def test_crash_looping_proxy_is_not_available_and_deletion_removes_pods(
    node_cluster: NodeCluster, node_namespace: str, tmp_path: Path,
    report: Callable[[str], None],
) -> None:
    nc, ns = node_cluster, node_namespace
    client = admin(nc)
    put_secret(client, ns, "openai", {"key": "sk-1"})
    # a memory limit the operator accepts but the proxy cannot start within: only the pod finds out
    tiny = {"resources": {"requests": {"memory": "8Mi"}, "limits": {"memory": "8Mi"}}}
    with provider_on_bridge("sk-1") as api_base, operator_on(nc, ns, tmp_path / "operator.log"):
        apply_endpoint(nc, ns, NAME, chat_spec(api_base, **tiny))

        def crash_looping() -> bool:
            pods = proxy_pods(client, ns, NAME)
            return any(cs.restartCount >= 1 for p in pods for cs in (p.status and p.status.containerStatuses) or [])

        wait("the proxy container to restart", crash_looping, 120)
        time.sleep(3)
        obj = endpoint(client, ns, NAME)
        avail = condition(obj, "ProxyAvailable")
        assert avail is not None, obj["status"]
        assert avail["status"] == "False", obj["status"]
        assert condition(obj, "Ready")["status"] == "False"  # type: ignore[index]
        # Argo CD: still Progressing while the first rollout is within its deadline ...
        assert run_health(obj)["status"] == "Progressing", run_health(obj)
        # ... Degraded once the Deployment controller gives up on it (a short deadline instead of 600 s; the
        # operator does not own the field, so its next apply leaves it alone)
        nc.cluster.kubectl("patch", "deployment", CHILD, "-n", ns, "--type=merge",
                           "-p", '{"spec": {"progressDeadlineSeconds": 5}}')  # fmt: skip
        health = wait("Argo CD health Degraded", lambda: (h := run_health(endpoint(client, ns, NAME)))
                      ["status"] == "Degraded" and h, 90)  # fmt: skip
        report(f"Argo CD health of the crash-looping endpoint: {health}")

        # deleting the endpoint removes the Deployment and every pod (real garbage collector)
        nc.cluster.kubectl("delete", "servingendpoint", NAME, "-n", ns, "--wait=true", "--timeout=60s")
        wait("every proxy pod gone", lambda: not proxy_pods(client, ns, NAME), 90)
        assert not list(client.list(Deployment, namespace=ns))
