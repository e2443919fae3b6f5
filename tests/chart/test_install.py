"""The chart with the real helm binary against the real kube-apiserver: install, the operator started from
what the chart rendered (same command, args, env and RBAC), a sample endpoint reconciled with no drift,
upgrade with a changed value, uninstall."""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelgate_dev.devcluster import DevCluster
from modelgate_operator import render

from .helmtool import CHART, Helm, container, one, parse_docs, set_args
from .localpod import LocalPod
from .reconcile import NAME, assert_kubectl_experience, assert_no_drift, eventually, get, reconcile_sample

RELEASE = "mg"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def release_ns(k8s: DevCluster) -> Iterator[str]:
    name = f"mgh-{secrets.token_hex(3)}"  # short: the operator's certificate CN embeds it
    yield name
    k8s.kubectl("delete", "servingendpoints", "--all", "-n", name, "--wait=false", "--ignore-not-found")
    k8s.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


@pytest.fixture
def cluster_helm(helm: Helm, k8s: DevCluster) -> Helm:
    return Helm(helm.binary, env={**k8s.env(), "HELM_CACHE_HOME": str(k8s.dir / "helm-cache"),
                                   "HELM_CONFIG_HOME": str(k8s.dir / "helm-config"),
                                   "HELM_DATA_HOME": str(k8s.dir / "helm-data")})  # fmt: skip


def _rendered(helm: Helm, namespace: str) -> list[dict[str, Any]]:
    return parse_docs(helm.run("get", "manifest", RELEASE, "-n", namespace).stdout)


def _operator_deployment(k8s: DevCluster, helm: Helm, namespace: str) -> dict[str, Any]:
    rendered = one(_rendered(helm, namespace), "Deployment")
    live = get(k8s, "deployment", rendered["metadata"]["name"], namespace)
    assert live is not None
    assert container(live)["args"] == container(rendered)["args"]  # what the API server stores is what we run
    return rendered


def test_helm_install_upgrade_uninstall(
    k8s: DevCluster, cluster_helm: Helm, release_ns: str, tmp_path: Path
) -> None:
    helm = cluster_helm
    values = {"livenessPort": _free_port(), "proxy.authentication.queryClusterRole": False}  # deploy/install.yaml has it
    out = helm.run(
        "install", RELEASE, str(CHART), "-n", release_ns, "--create-namespace", *set_args(values), "--wait=false"
    ).stdout
    assert "STATUS: deployed" in out
    # NOTES.txt: what to do next, for this release
    assert f"kubectl -n {release_ns} rollout status deployment/{RELEASE}-modelgate" in out
    assert f"kubectl -n {release_ns} create secret generic openai" in out
    assert "{{secrets/openai/api-key}}" in out

    docs = _rendered(helm, release_ns)
    for kind in ("ServiceAccount", "Role", "RoleBinding", "Deployment"):
        obj = one(docs, kind)
        assert get(k8s, kind.lower(), obj["metadata"]["name"], release_ns) is not None, kind
    established = k8s.kubectl("get", "crd", "kopfpeerings.kopf.dev", "-o", "name", check=False)
    assert established.returncode == 0  # crds/ installed by `helm install` (the ServingEndpoint CRD already was)

    # ---- the operator as the chart runs it
    deployment = _operator_deployment(k8s, helm, release_ns)
    with LocalPod(k8s, deployment, tmp_path / "operator.log") as pod:
        pod.wait_live()
        obj = reconcile_sample(k8s, release_ns, pod.logs)
        assert obj["status"]["endpointUrl"].startswith(f"http://{render.child_name(NAME)}.{release_ns}.svc")
        child = get(k8s, "deployment", render.child_name(NAME), release_ns)
        assert child is not None
        assert container(child)["image"] == "ghcr.io/modelgate/modelgate-proxy:0.1.0"  # the chart's proxy default
        assert child["spec"]["replicas"] == 1
        assert container(child)["imagePullPolicy"] == "IfNotPresent"
        # the chart's proxy.resources default, passed as MODELGATE_PROXY_RESOURCES
        assert container(child)["resources"] == {
            "requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"},
        }  # fmt: skip
        # the namespace's workspace gateway, bound (with the operator's bind right) to the chart's ClusterRole
        gateway = eventually("the workspace gateway", lambda: get(k8s, "deployment", "modelgate-gateway", release_ns),
                             30.0, detail=pod.logs)  # fmt: skip
        assert container(gateway)["resources"] == {"requests": {"cpu": "100m", "memory": "192Mi"},
                                                   "limits": {"memory": "512Mi"}}  # fmt: skip
        binding = get(k8s, "rolebinding", "modelgate-gateway", release_ns)
        assert binding is not None
        assert binding["roleRef"]["name"] == f"{RELEASE}-modelgate-{release_ns}-gateway"
        assert_kubectl_experience(k8s, release_ns)
        assert_no_drift(k8s, release_ns)
        assert "Traceback" not in pod.logs()

    # ---- upgrade with a changed value: the pod template changes, the restarted operator applies it
    helm.run("upgrade", RELEASE, str(CHART), "-n", release_ns, "--reuse-values",
             *set_args({"proxy.replicas": 2, "proxy.image.tag": "0.1.1", "proxy.image.pullPolicy": "Always",
                       "proxy.resources": {"limits": {"memory": "1Gi"}}}), "--wait=false")  # fmt: skip
    history = json.loads(helm.run("history", RELEASE, "-n", release_ns, "-o", "json").stdout)
    assert [h["revision"] for h in history] == [1, 2]
    assert history[-1]["status"] == "deployed"
    upgraded = _operator_deployment(k8s, helm, release_ns)
    assert "--proxy-replicas=2" in container(upgraded)["args"]
    with LocalPod(k8s, upgraded, tmp_path / "operator-2.log") as pod:
        pod.wait_live()

        def rolled() -> bool:
            child = get(k8s, "deployment", render.child_name(NAME), release_ns) or {}
            spec = child.get("spec", {})
            image = container(child)["image"] if spec else ""
            if not (spec.get("replicas") == 2 and image == "ghcr.io/modelgate/modelgate-proxy:0.1.1"):
                return False
            return bool(container(child)["imagePullPolicy"] == "Always" and container(child)["resources"] == {
                "requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}})  # merged by helm

        eventually("the proxy Deployment to follow the new defaults", rolled, 60.0, detail=pod.logs)
        assert_no_drift(k8s, release_ns)
        # delete the endpoint while its operator runs (the finalizer cleans up its children)
        k8s.kubectl("delete", "servingendpoint", NAME, "-n", release_ns, "--timeout=60s")
        assert get(k8s, "deployment", render.child_name(NAME), release_ns) is None

    # ---- uninstall: everything the release made goes; the CRDs (crds/ dir) stay
    helm.run("uninstall", RELEASE, "-n", release_ns, "--wait")
    for kind in ("ServiceAccount", "Role", "RoleBinding", "Deployment"):
        obj = one(docs, kind)
        assert get(k8s, kind.lower(), obj["metadata"]["name"], release_ns) is None, kind
    assert k8s.kubectl("get", "crd", "servingendpoints.serving.modelgate.io", check=False).returncode == 0


@pytest.mark.parametrize("scope", ["namespaced", "cluster"])
def test_notes_say_where_endpoints_go(cluster_helm: Helm, release_ns: str, scope: str) -> None:
    """NOTES.txt (what `helm install` prints): with watch.scope=cluster the endpoint goes in a namespace of the
    user's choosing, never in the operator's own."""
    out = cluster_helm.run("install", RELEASE, str(CHART), "-n", release_ns, "--dry-run=client",
                           *set_args({"watch.scope": scope})).stdout  # fmt: skip
    notes = out[out.index("NOTES:"):]
    assert f"kubectl -n {release_ns} rollout status deployment/{RELEASE}-modelgate" in notes
    if scope == "namespaced":
        assert f"kubectl -n {release_ns} create secret generic openai" in notes
        assert "$NS" not in notes
    else:
        assert "ServingEndpoints in every namespace" in notes
        assert notes.count(f"-n {release_ns}") == 1  # only the operator's rollout status
        assert "kubectl -n $NS create secret generic openai" in notes
        assert "kubectl -n $NS apply -f -" in notes
        assert "NS=team-a\n" in notes


def test_templated_crds_are_kept_on_uninstall(k8s: DevCluster, cluster_helm: Helm, release_ns: str) -> None:
    """crds.install=true (with --skip-crds) manages the CRDs as release objects; crds.keep leaves them behind."""
    helm = cluster_helm
    # The test cluster already has the CRDs (applied outside Helm): adopt them, as an upgrade from crds/ would.
    helm.run("install", RELEASE, str(CHART), "-n", release_ns, "--create-namespace", "--skip-crds",
             "--take-ownership", *set_args({"crds.install": True, "crds.keep": True}), "--wait=false")  # fmt: skip
    crd = get(k8s, "crd", "servingendpoints.serving.modelgate.io", "default")
    assert crd is not None
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == RELEASE
    out = helm.run("uninstall", RELEASE, "-n", release_ns, "--wait")
    assert "kept due to the resource policy" in out.stdout + out.stderr
    assert get(k8s, "crd", "servingendpoints.serving.modelgate.io", "default") is not None
    assert get(k8s, "crd", "kopfpeerings.kopf.dev", "default") is not None


@pytest.fixture
def bare_k8s(k8s_bin: Path) -> Iterator[DevCluster]:
    """A control plane of its own without any CRD (the session cluster has them all): about 3 s to start."""
    with DevCluster(bin_dir=k8s_bin) as cluster:
        yield cluster


def _helm_for(helm: Helm, k8s: DevCluster) -> Helm:
    return Helm(helm.binary, env={**k8s.env(), "HELM_CACHE_HOME": str(k8s.dir / "helm-cache"),
                                   "HELM_CONFIG_HOME": str(k8s.dir / "helm-config"),
                                   "HELM_DATA_HOME": str(k8s.dir / "helm-data")})  # fmt: skip


@pytest.mark.parametrize("scope", ["namespaced", "cluster"])
def test_fresh_install_of_templated_crds_with_peering(bare_k8s: DevCluster, helm: Helm, scope: str) -> None:
    """crds.install=true and replicaCount>1 on a cluster without the CRDs: the peering object's kind only exists
    once the release's CRDs do, so it is created after them (a hook); install, upgrade and uninstall succeed."""
    k8s, helm = bare_k8s, _helm_for(helm, bare_k8s)
    assert k8s.kubectl("get", "crd", "-o", "name").stdout.strip() == ""
    namespace = "mg-fresh"
    values = {"crds.install": True, "replicaCount": 2, "watch.scope": scope, "proxy.authentication.queryClusterRole": False}
    kind, where = ("clusterkopfpeering", []) if scope == "cluster" else ("kopfpeering", ["-n", namespace])
    out = helm.run("install", RELEASE, str(CHART), "-n", namespace, "--create-namespace", "--skip-crds",
                   *set_args(values), "--wait=false").stdout  # fmt: skip
    assert "STATUS: deployed" in out
    for crd in ("servingendpoints.serving.modelgate.io", "kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"):
        assert get(k8s, "crd", crd, "default") is not None, crd
    peering = k8s.kubectl("get", kind, f"{RELEASE}-modelgate", *where, "-o", "json")
    first_uid = json.loads(peering.stdout)["metadata"]["uid"]
    assert get(k8s, "deployment", f"{RELEASE}-modelgate", namespace) is not None

    helm.run("upgrade", RELEASE, str(CHART), "-n", namespace, "--reuse-values", "--skip-crds",
             *set_args({"proxy.replicas": 2}), "--wait=false")  # fmt: skip
    peering = k8s.kubectl("get", kind, f"{RELEASE}-modelgate", *where, "-o", "json")
    assert json.loads(peering.stdout)["metadata"]["uid"] != first_uid  # re-created by the post-upgrade hook
    history = json.loads(helm.run("history", RELEASE, "-n", namespace, "-o", "json").stdout)
    assert [h["status"] for h in history] == ["superseded", "deployed"]

    helm.run("uninstall", RELEASE, "-n", namespace, "--wait")
    assert get(k8s, "deployment", f"{RELEASE}-modelgate", namespace) is None
    assert get(k8s, "crd", "servingendpoints.serving.modelgate.io", "default") is not None  # crds.keep
