"""The local kubelet (what ``make up`` runs in place of a node): the rendered Deployment runs as a local process
with the rendered volumes, its rollout is reported so the endpoint becomes Ready, a rotated Secret restarts it
with the new key, scale to zero and deletion stop it. Same code path as ``make up`` (LocalKubelet.sync)."""

from __future__ import annotations

import json
import secrets as pysecrets
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client
from lightkube.types import PatchType

from modelgate_dev import localdev
from modelgate_dev.devcluster import DevCluster, DevClusterError
from modelgate_dev.localkubelet import LocalKubelet, LocalKubeletError, local_command, rollout_status
from modelgate_operator import render
from modelgate_operator.conditions import proxy_state_from, rollout
from modelgate_operator.kube import ServingEndpoint
from modelgate_operator.secrets import collect
from modelgate_proxy.spec import ServingEndpointSpec
from tests.chart.test_argocd_health import run_health

from .harness import REPO, OperatorProcess, assert_no_leak, cluster_texts, condition, endpoint, put_secret, wait_for
from .samples import endpoint as manifest

NAME = "chat"
CHILD = render.child_name(NAME)
LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# ----------------------------------------------------------------------------------------------- no cluster


def test_container_command_is_rewritten_to_local_paths_and_port(tmp_path: Path) -> None:
    spec = ServingEndpointSpec.model_validate(localdev.quickstart_manifests("http://127.0.0.1:1", "k")[1]["spec"])
    owner = render.Owner(name="quickstart", namespace="default", uid="u")
    dep = render.render(owner, spec, {}, render.ProxyDefaults(), collect(spec)).deployment
    container = dep["spec"]["template"]["spec"]["containers"][0]
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    cmd = local_command(container["command"], mounts, tmp_path, 4321, ["/venv/bin/modelgate"])
    assert cmd == [
        "/venv/bin/modelgate", "serve",
        "-f", str(tmp_path / "etc/modelgate/endpoint.yaml"),
        "--secrets-dir", str(tmp_path / "etc/modelgate/secrets"),  # above the Secret mounts: moved too
        "--host", "127.0.0.1",
        "--port", "4321",
        "--no-auth",  # the quickstart is open
    ]  # fmt: skip
    with pytest.raises(LocalKubeletError):
        local_command(["nginx"], mounts, tmp_path, 1, ["x"])


def test_rollout_status_is_what_the_deployment_controller_reports() -> None:
    done = rollout_status(3, 2, True)
    assert {k: v for k, v in done.items() if k != "conditions"} == {
        "observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
        "availableReplicas": 2, "unavailableReplicas": 0,
    }  # fmt: skip

    def progressing(st: dict[str, Any]) -> tuple[str, str]:
        (cond,) = (c for c in st["conditions"] if c["type"] == "Progressing")
        return cond["status"], cond["reason"]

    assert progressing(done) == ("True", "NewReplicaSetAvailable")
    starting = rollout_status(3, 2, False)
    assert starting["availableReplicas"] == 0
    assert progressing(starting) == ("True", "ReplicaSetUpdated")
    # pods that fail after the rollout finished: the controller keeps saying the rollout is complete
    assert progressing(rollout_status(3, 2, False, completed=True)) == ("True", "NewReplicaSetAvailable")
    state = proxy_state_from({"metadata": {"generation": 3}, "spec": {"replicas": 2}, "status": starting})
    assert rollout(state) == "InProgress"


def test_user_certificate_cn_over_64_characters_is_refused_clearly(tmp_path: Path) -> None:
    cluster = DevCluster(tmp_path, bin_dir=tmp_path)  # never started: the check comes first
    with pytest.raises(DevClusterError, match="at most 64"):
        cluster.create_user_kubeconfig("system:serviceaccount:" + "n" * 30 + ":modelgate-operator")


# ----------------------------------------------------------------------------------------------- cluster


@pytest.fixture
def local_kubelet(client: Client, namespace: str, tmp_path: Path) -> Iterator[LocalKubelet]:
    env = {"PYTHONPATH": str(REPO / "proxy"), "PATH": "/usr/bin:/bin"}
    lk = LocalKubelet(client, tmp_path / "pods", namespace=namespace,
                      modelgate=[sys.executable, "-m", "modelgate_proxy"], env=env)  # fmt: skip
    halt = threading.Event()
    thread = threading.Thread(target=lk.run, args=(halt, 0.2), daemon=True)
    thread.start()
    yield lk
    halt.set()
    thread.join(20)


def chat(url: str, text: str) -> str:
    req = urllib.request.Request(
        f"{url}/serving-endpoints/{NAME}/invocations",
        data=json.dumps({"messages": [{"role": "user", "content": text}]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with LOOPBACK.open(req, timeout=10) as r:
        return str(json.loads(r.read())["choices"][0]["message"]["content"])


def ready_at(client: Client, namespace: str, generation: int | None = None) -> dict[str, Any] | None:
    obj = endpoint(client, namespace, NAME)
    cond = condition(obj, "Ready")
    want = generation or obj["metadata"]["generation"]
    if cond and cond["status"] == "True" and obj["status"].get("observedGeneration") == want:
        return obj
    return None


def test_local_kubelet_runs_the_rendered_proxy_until_ready_and_follows_changes(
    k8s: DevCluster, namespace: str, operator: OperatorProcess, client: Client, local_kubelet: LocalKubelet
) -> None:
    from tests.standins.openai_api import OpenAIStandIn
    from tests.standins.server import serve_app

    first, second = (f"sk-local-{pysecrets.token_hex(8)}" for _ in range(2))
    provider = OpenAIStandIn(api_key=first)
    put_secret(client, namespace, "provider", {"api-key": first})
    with serve_app(provider.app) as url:
        docs = localdev.quickstart_manifests(url, first)
        spec = docs[1]["spec"]
        spec["servedEntities"][0]["externalModel"]["openaiConfig"]["openaiApiKey"] = "{{secrets/provider/api-key}}"
        k8s.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(manifest(NAME, namespace, spec)))

        # Ready only through the local kubelet's rollout report (there is no fake controller here).
        obj = wait_for("Ready", lambda: ready_at(client, namespace), timeout=30)
        assert condition(obj, "ProxyAvailable")["reason"] == "MinimumReplicasAvailable"  # type: ignore[index]
        pod = local_kubelet.pods[(namespace, CHILD)]
        info = json.loads((pod.dir / "pod.json").read_text())
        assert info["ready"] is True
        assert info["url"] == pod.url
        assert chat(pod.url, "hello") == "You said: hello"
        assert provider.stats.requests[-1]["headers"]["authorization"] == f"Bearer {first}"
        config = (pod.dir / "root/etc/modelgate/endpoint.yaml").read_text()
        assert "{{secrets/provider/api-key}}" in config
        assert (pod.dir / "root/etc/modelgate/secrets/provider/api-key").read_text() == first
        assert first not in config
        pid = pod.proc.pid if pod.proc else None

        def no_leak(phase: str) -> None:
            """Neither key, raw or base64, in the cluster's objects (but Secrets), the operator's or the proxy's logs
            (every proxy process appends to the same proxy.log)."""
            logs = {"operator logs": operator.logs(), "proxy logs": (pod.dir / "proxy.log").read_text(errors="replace")}
            assert_no_leak(phase, (first, second), {**cluster_texts(k8s, namespace, NAME), **logs})

        no_leak("create")

        # Rotation: new checksum -> new pod template -> the process is restarted with the new key.
        provider.api_key = second
        put_secret(client, namespace, "provider", {"api-key": second})

        def restarted() -> bool:
            return bool(pod.proc and pod.proc.pid != pid and pod.ready)

        wait_for("restart with the rotated key", restarted, timeout=30)
        assert chat(pod.url, "again") == "You said: again"
        assert provider.stats.requests[-1]["headers"]["authorization"] == f"Bearer {second}"
        provider.api_key = "sk-something-else"  # a rejected key: the proxy's error path logs too
        with pytest.raises(urllib.error.HTTPError):
            chat(pod.url, "rejected")
        no_leak("rotate")
        provider.api_key = second

        # The proxy dies after its rollout finished (a crash loop): the endpoint says so at once, not "in progress",
        # and Argo CD's health check makes it Degraded; the kubelet restarts it (after 2 s) and it is Ready again.
        crashed = pod.proc
        assert crashed is not None
        crashed.kill()

        def failed() -> dict[str, Any] | None:
            obj = endpoint(client, namespace, NAME)
            proxy = condition(obj, "ProxyAvailable") or {}
            return obj if proxy.get("reason") == "NoAvailableReplicas" else None

        obj = wait_for("NoAvailableReplicas", failed, timeout=10, interval=0.05)
        assert obj["status"]["state"] == {"ready": "NOT_READY", "configUpdate": "NOT_UPDATING"}
        assert run_health(obj)["status"] == "Degraded"
        wait_for("restarted", lambda: pod.proc is not crashed and pod.ready, timeout=30)
        obj = wait_for("Ready after the restart", lambda: ready_at(client, namespace), timeout=20)
        assert run_health(obj) == {"status": "Healthy", "message": "EndpointReady: the endpoint is serving"}

        # Scale to zero: the process stops; the endpoint says so.
        client.patch(ServingEndpoint, NAME, {"spec": {"proxy": {"replicas": 0}}}, namespace=namespace,
                     patch_type=PatchType.MERGE)  # fmt: skip
        wait_for("stopped", lambda: pod.proc is None and not pod.ready, timeout=20)
        def scaled_to_zero() -> dict[str, Any] | None:
            obj = endpoint(client, namespace, NAME)
            ready = condition(obj, "Ready") or {}
            current = obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
            return obj if current and ready.get("reason") == "ScaledToZero" else None

        obj = wait_for("ScaledToZero", scaled_to_zero, timeout=20)
        assert condition(obj, "Ready")["status"] == "False"  # type: ignore[index]  # nothing serves
        assert condition(obj, "ProxyAvailable")["status"] == "False"  # type: ignore[index]

        # Back to one, then delete: the process goes with the Deployment.
        client.patch(ServingEndpoint, NAME, {"spec": {"proxy": {"replicas": 1}}}, namespace=namespace,
                     patch_type=PatchType.MERGE)  # fmt: skip
        wait_for("running again", lambda: pod.ready, timeout=30)
        running = pod.proc
        assert running is not None
        proxy_log = (pod.dir / "proxy.log").read_text()
        assert "serving endpoints: chat" in proxy_log
        client.delete(ServingEndpoint, NAME, namespace=namespace)
        wait_for("pod removed", lambda: (namespace, CHILD) not in local_kubelet.pods, timeout=20)
        assert running.poll() is not None
        assert not pod.dir.exists()
    assert_no_leak("delete", (first, second), {"operator logs": operator.logs(), "proxy logs": proxy_log})
